package main

import (
	"fmt"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// workload is anything with a pod template.
type workload struct {
	obj      *Object
	selector *metav1.LabelSelector
	replicas *int32
	tpl      *corev1.PodTemplateSpec
}

func (w *workload) ns() string { return w.obj.Meta.GetNamespace() }

// checker holds one rendering's objects, indexed, and the problems found.
type checker struct {
	known     *Known
	objs      []*Object
	workloads []*workload
	services  []*corev1.Service
	svcObj    map[*corev1.Service]*Object
	configMap map[string]*corev1.ConfigMap // ns/name
	secrets   map[string]*corev1.Secret    // ns/name
	// apiPorts: the container ports each HTQ API container listens on, by
	// workload and container name (filled by checkWorkload).
	apiPorts map[*workload]map[string]apiListen
	probs    []string
}

// apiListen is where an HTQ API container serves the API and /metrics
// (metrics is 0 when /metrics is on the API port).
type apiListen struct{ api, metrics int32 }

func key(ns, name string) string { return ns + "/" + name }

func (c *checker) errf(o *Object, format string, args ...any) {
	c.probs = append(c.probs, o.Ref()+": "+fmt.Sprintf(format, args...))
}

// Check runs every check on one rendering and returns its problems, sorted.
// known (the README's keys) may be nil: config keys and HTQ_ variables are
// then not checked against it.
func Check(objs []*Object, known *Known) []string {
	c := &checker{known: known, objs: objs, svcObj: map[*corev1.Service]*Object{},
		configMap: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		apiPorts: map[*workload]map[string]apiListen{}}
	seen := map[string]*Object{}
	for _, o := range objs {
		id := o.GVK.GroupKind().String() + " " + key(o.Meta.GetNamespace(), o.Meta.GetName())
		if prev, dup := seen[id]; dup {
			c.errf(o, "same kind and name as %s", prev.Source)
		}
		seen[id] = o
		switch t := o.Obj.(type) {
		case *appsv1.Deployment:
			c.workloads = append(c.workloads, &workload{o, t.Spec.Selector, t.Spec.Replicas, &t.Spec.Template})
		case *appsv1.StatefulSet:
			c.workloads = append(c.workloads, &workload{o, t.Spec.Selector, t.Spec.Replicas, &t.Spec.Template})
		case *appsv1.DaemonSet:
			c.workloads = append(c.workloads, &workload{o, t.Spec.Selector, nil, &t.Spec.Template})
		case *corev1.Service:
			c.services = append(c.services, t)
			c.svcObj[t] = o
		case *corev1.ConfigMap:
			c.configMap[key(t.Namespace, t.Name)] = t
		case *corev1.Secret:
			c.secrets[key(t.Namespace, t.Name)] = t
		}
	}
	for _, w := range c.workloads {
		c.checkWorkload(w)
	}
	for _, o := range objs {
		switch t := o.Obj.(type) {
		case *corev1.Service:
			c.checkService(o, t)
		case *corev1.ConfigMap:
			c.checkConfigMapSecrets(o, t)
		case *appsv1.StatefulSet:
			c.checkStatefulSet(o, t)
		case *policyv1.PodDisruptionBudget:
			c.checkPDB(o, t)
		case *autoscalingv2.HorizontalPodAutoscaler:
			c.checkHPA(o, t)
		case *networkingv1.Ingress:
			c.checkIngress(o, t)
		case *networkingv1.NetworkPolicy:
			c.checkNetworkPolicy(o, t)
		case *unstructured.Unstructured:
			c.checkCustom(o, t)
		}
	}
	sort.Strings(c.probs)
	return c.probs
}

// podsMatching returns the workloads in ns whose pod labels sel selects.
func (c *checker) podsMatching(ns string, sel labels.Selector) []*workload {
	var out []*workload
	for _, w := range c.workloads {
		if w.ns() == ns && sel.Matches(labels.Set(w.tpl.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func (c *checker) workloadNamed(ns, kind, name string) *workload {
	for _, w := range c.workloads {
		if w.ns() == ns && w.obj.GVK.Kind == kind && w.obj.Meta.GetName() == name {
			return w
		}
	}
	return nil
}

func (c *checker) checkWorkload(w *workload) {
	o := w.obj
	if w.selector == nil || (len(w.selector.MatchLabels) == 0 && len(w.selector.MatchExpressions) == 0) {
		c.errf(o, "no selector (or an empty one, which selects every pod)")
	} else if sel, err := metav1.LabelSelectorAsSelector(w.selector); err != nil {
		c.errf(o, "selector: %v", err)
	} else if !sel.Matches(labels.Set(w.tpl.Labels)) {
		c.errf(o, "selector %s does not match the pod template's labels %v", sel, w.tpl.Labels)
	}
	ps := &w.tpl.Spec
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		c.errf(o, "uses the host's network, PID or IPC namespace")
	}
	volumes := map[string]*corev1.Volume{}
	for i := range ps.Volumes {
		volumes[ps.Volumes[i].Name] = &ps.Volumes[i]
		c.checkVolumeSource(o, &ps.Volumes[i])
	}
	if ss, ok := o.Obj.(*appsv1.StatefulSet); ok {
		for _, pvc := range ss.Spec.VolumeClaimTemplates {
			volumes[pvc.Name] = &corev1.Volume{Name: pvc.Name}
		}
	}
	all := slices.Concat(ps.InitContainers, ps.Containers)
	if len(ps.Containers) == 0 {
		c.errf(o, "no containers")
	}
	for i := range all {
		init := i < len(ps.InitContainers)
		c.checkContainer(w, &all[i], init, volumes)
	}
}

func (c *checker) checkVolumeSource(o *Object, v *corev1.Volume) {
	ns := o.Meta.GetNamespace()
	switch {
	case v.ConfigMap != nil:
		cm, ok := c.configMap[key(ns, v.ConfigMap.Name)]
		if !ok {
			if v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional {
				c.errf(o, "volume %s: ConfigMap %s is not in the rendering", v.Name, v.ConfigMap.Name)
			}
			return
		}
		for _, it := range v.ConfigMap.Items {
			if _, ok := cm.Data[it.Key]; !ok {
				c.errf(o, "volume %s: ConfigMap %s has no key %s", v.Name, cm.Name, it.Key)
			}
		}
	case v.Secret != nil:
		if s, ok := c.secrets[key(ns, v.Secret.SecretName)]; ok {
			for _, it := range v.Secret.Items {
				if _, ok := s.Data[it.Key]; !ok {
					c.errf(o, "volume %s: Secret %s has no key %s", v.Name, s.Name, it.Key)
				}
			}
		}
	}
}

func (c *checker) checkContainer(w *workload, ct *corev1.Container, init bool, volumes map[string]*corev1.Volume) {
	o := w.obj
	ps := &w.tpl.Spec
	where := "container " + ct.Name
	bad := func(format string, args ...any) { c.errf(o, where+": "+format, args...) }

	// Resources: requests and limits of cpu and memory.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := ct.Resources.Requests[r]
		lim, hasLim := ct.Resources.Limits[r]
		if !hasReq || req.IsZero() {
			bad("no %s request", r)
		}
		if !hasLim || lim.IsZero() {
			bad("no %s limit", r)
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			bad("%s request %s is above its limit %s", r, req.String(), lim.String())
		}
	}

	// Security context: the container's settings win over the pod's.
	sc := ct.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	psc := ps.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		bad("runAsNonRoot is not true")
	}
	uid := sc.RunAsUser
	if uid == nil {
		uid = psc.RunAsUser
	}
	role := htqRole(ct)
	switch {
	case uid == nil:
		bad("runAsUser is not set")
	case *uid == 0:
		bad("runs as root (runAsUser 0)")
	case role != "" && *uid != htqUID:
		bad("runAsUser %d: the HTQ image's user is %d (nonroot)", *uid, htqUID)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad("allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		bad("privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		bad("capabilities do not drop ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		bad("adds capabilities %v", sc.Capabilities.Add)
	}
	sp := sc.SeccompProfile
	if sp == nil {
		sp = psc.SeccompProfile
	}
	if sp == nil || sp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("seccompProfile is not RuntimeDefault")
	}

	// Volume mounts name volumes of the pod.
	for _, m := range ct.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			bad("volumeMount %s: no such volume", m.Name)
		}
	}

	// Environment: unique names, references that resolve.
	c.checkEnv(w, ct, bad)
	c.checkContainerSecrets(ct, bad)

	if init {
		return
	}

	// Probes: both, on declared ports.
	ports := map[string]int32{}
	numbers := map[int32]bool{}
	for _, p := range ct.Ports {
		if p.Name != "" {
			ports[p.Name] = p.ContainerPort
		}
		numbers[p.ContainerPort] = true
	}
	probePort := func(kind string, p *corev1.Probe) (int32, bool) {
		var port intstr.IntOrString
		switch {
		case p.HTTPGet != nil:
			port = p.HTTPGet.Port
		case p.TCPSocket != nil:
			port = p.TCPSocket.Port
		case p.GRPC != nil:
			port = intstr.FromInt32(p.GRPC.Port)
		default:
			return 0, false
		}
		n, ok := resolvePort(port, ports, numbers)
		if !ok {
			bad("%s probe port %s is not a port of the container", kind, port.String())
		}
		return n, ok
	}
	lp, rp := ct.LivenessProbe, ct.ReadinessProbe
	if lp == nil {
		bad("no liveness probe")
	}
	if rp == nil {
		bad("no readiness probe")
	}
	for kind, p := range map[string]*corev1.Probe{"liveness": lp, "readiness": rp, "startup": ct.StartupProbe} {
		if p != nil {
			probePort(kind, p)
		}
	}
	if role == "" {
		// Not HTQ (the bundled Redis): any probe kind, but the two must differ.
		if lp != nil && rp != nil && reflect.DeepEqual(lp.ProbeHandler, rp.ProbeHandler) {
			bad("liveness and readiness probes are identical")
		}
		return
	}
	c.checkHTQContainer(w, ct, role, ports, numbers, bad)
}

func resolvePort(p intstr.IntOrString, named map[string]int32, numbers map[int32]bool) (int32, bool) {
	if p.Type == intstr.String {
		n, ok := named[p.StrVal]
		return n, ok
	}
	return p.IntVal, numbers[p.IntVal]
}

func (c *checker) checkEnv(w *workload, ct *corev1.Container, bad func(string, ...any)) {
	ns := w.ns()
	seen := map[string]bool{}
	for _, e := range ct.Env {
		if seen[e.Name] {
			bad("env %s is set twice", e.Name)
		}
		seen[e.Name] = true
		if c.known != nil && strings.HasPrefix(e.Name, "HTQ_") && !c.known.Envs[e.Name] {
			bad("env %s is not one of HTQ's variables (README configuration table)", e.Name)
		}
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			if s, ok := c.secrets[key(ns, r.Name)]; ok {
				_, inData := s.Data[r.Key]
				_, inString := s.StringData[r.Key]
				if !inData && !inString && (r.Optional == nil || !*r.Optional) {
					bad("env %s: Secret %s has no key %s and the reference is not optional", e.Name, r.Name, r.Key)
				}
			}
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			cm, ok := c.configMap[key(ns, r.Name)]
			optional := r.Optional != nil && *r.Optional
			switch {
			case !ok && !optional:
				bad("env %s: ConfigMap %s is not in the rendering", e.Name, r.Name)
			case ok && !optional:
				if _, has := cm.Data[r.Key]; !has {
					bad("env %s: ConfigMap %s has no key %s", e.Name, r.Name, r.Key)
				}
			}
		}
	}
}

// configFile finds the ConfigMap data behind the --config path of an HTQ
// container: the mount whose path holds the file, its volume, the key.
func (c *checker) configFile(w *workload, ct *corev1.Container, file string) (string, error) {
	dir, base := path.Split(path.Clean(file))
	dir = path.Clean(dir)
	for _, m := range ct.VolumeMounts {
		dirMount := path.Clean(m.MountPath) == dir
		fileMount := m.SubPath != "" && path.Clean(m.MountPath) == path.Clean(file)
		if !dirMount && !fileMount {
			continue
		}
		var vol *corev1.Volume
		for i := range w.tpl.Spec.Volumes {
			if w.tpl.Spec.Volumes[i].Name == m.Name {
				vol = &w.tpl.Spec.Volumes[i]
			}
		}
		if vol == nil || vol.ConfigMap == nil {
			return "", fmt.Errorf("--config %s: the mount at %s is not a ConfigMap volume", file, m.MountPath)
		}
		k := base
		if m.SubPath != "" {
			k = m.SubPath
		}
		for _, it := range vol.ConfigMap.Items {
			if it.Path == k {
				k = it.Key
			}
		}
		cm, ok := c.configMap[key(w.ns(), vol.ConfigMap.Name)]
		if !ok {
			return "", fmt.Errorf("--config %s: ConfigMap %s is not in the rendering", file, vol.ConfigMap.Name)
		}
		data, ok := cm.Data[k]
		if !ok {
			return "", fmt.Errorf("--config %s: ConfigMap %s has no key %s", file, cm.Name, k)
		}
		if !m.ReadOnly {
			return data, fmt.Errorf("--config %s: the config mount is not readOnly", file)
		}
		return data, nil
	}
	return "", fmt.Errorf("--config %s: no volume is mounted at %s", file, dir)
}

func (c *checker) checkHTQContainer(w *workload, ct *corev1.Container, role string, ports map[string]int32, numbers map[int32]bool, bad func(string, ...any)) {
	o := w.obj
	args := slices.Concat(ct.Command, ct.Args)
	s := &htqSettings{role: role, env: map[string]corev1.EnvVar{}, args: args}
	for _, e := range ct.Env {
		s.env[e.Name] = e
	}
	file, hasFile := flagValue(args[1:], "config")
	if !hasFile {
		if e, ok := s.env["HTQ_CONFIG"]; ok && e.ValueFrom == nil {
			file, hasFile = e.Value, true
		}
	}
	if hasFile {
		data, err := c.configFile(w, ct, file)
		if err != nil {
			bad("%v", err)
		}
		if data != "" {
			cfg, probs := parseConfig(data, c.known)
			for _, p := range probs {
				bad("%s: %s", file, p)
			}
			s.config = cfg
		}
	}

	// The role's listener: a fixed port, declared, and the one its probes use.
	defListen := defaultRoleListen
	if role == "api" {
		defListen = defaultAPIListen
	}
	listen, set, err := s.lookup(role+".listen", "listen")
	if err != nil {
		bad("%v", err)
		return
	}
	if !set {
		listen = defListen
	}
	mainPort, err := listenPort(listen)
	if err != nil {
		bad("%s.listen: %v", role, err)
		return
	}
	if !numbers[mainPort] {
		bad("%s.listen is %q but port %d is not a containerPort (ports: %v)", role, listen, mainPort, ports)
	}
	listening := map[int32]string{mainPort: role + ".listen"}
	if role == "api" {
		ml, set, err := s.lookup("api.metrics_listen", "metrics-listen")
		switch {
		case err != nil:
			bad("%v", err)
		case set && ml != "":
			mp, err := listenPort(ml)
			if err != nil {
				bad("api.metrics_listen: %v", err)
			} else {
				if !numbers[mp] {
					bad("api.metrics_listen is %q but port %d is not a containerPort", ml, mp)
				}
				if mp == mainPort {
					bad("api.metrics_listen and api.listen share port %d", mp)
				}
				listening[mp] = "api.metrics_listen"
				if c.apiPorts[w] == nil {
					c.apiPorts[w] = map[string]apiListen{}
				}
				c.apiPorts[w][ct.Name] = apiListen{api: mainPort, metrics: mp}
			}
		}
	}
	for _, p := range ct.Ports {
		if _, ok := listening[p.ContainerPort]; !ok {
			bad("containerPort %d (%s) is not a port HTQ listens on (%v)", p.ContainerPort, p.Name, listening)
		}
	}
	for kind, want := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"liveness": {ct.LivenessProbe, "/healthz"}, "readiness": {ct.ReadinessProbe, "/readyz"}} {
		if want.p == nil {
			continue
		}
		g := want.p.HTTPGet
		if g == nil {
			bad("%s probe is not an HTTP GET of %s", kind, want.path)
			continue
		}
		if g.Path != want.path {
			bad("%s probe path is %q, want %s", kind, g.Path, want.path)
		}
		if n, ok := resolvePort(g.Port, ports, numbers); ok && n != mainPort {
			bad("%s probe is on port %d, but %s.listen is port %d", kind, n, role, mainPort)
		}
	}

	if role == "dispatcher" {
		v, set, err := s.lookup("dispatcher.shutdown_grace", "")
		grace := defaultShutdownGrace
		if err != nil {
			bad("%v", err)
		} else if set {
			if grace, err = parseHTQDuration(v); err != nil {
				bad("dispatcher.shutdown_grace %q: %v", v, err)
			}
		}
		tgp := int64(30) // Kubernetes' default
		if w.tpl.Spec.TerminationGracePeriodSeconds != nil {
			tgp = *w.tpl.Spec.TerminationGracePeriodSeconds
		}
		if time.Duration(tgp)*time.Second <= grace {
			c.errf(o, "terminationGracePeriodSeconds %d does not exceed dispatcher.shutdown_grace %s: calls in flight would be killed", tgp, grace)
		}
	}
}

func (c *checker) checkStatefulSet(o *Object, s *appsv1.StatefulSet) {
	if s.Spec.ServiceName == "" {
		return
	}
	svc := c.serviceNamed(s.Namespace, s.Spec.ServiceName)
	switch {
	case svc == nil:
		c.errf(o, "serviceName %s is not a Service of the rendering", s.Spec.ServiceName)
	case svc.Spec.ClusterIP != corev1.ClusterIPNone:
		c.errf(o, "serviceName %s is not a headless Service", s.Spec.ServiceName)
	}
}

func (c *checker) checkService(o *Object, s *corev1.Service) {
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if len(s.Spec.Selector) == 0 {
		c.errf(o, "no selector")
		return
	}
	pods := c.podsMatching(s.Namespace, labels.SelectorFromSet(s.Spec.Selector))
	if len(pods) == 0 {
		c.errf(o, "selector %v matches no pod template", s.Spec.Selector)
		return
	}
	// /metrics stays off the Service that clients (a load balancer, an
	// Ingress) use: it tells anyone the queues, their sizes and error rates.
	if api, metrics := c.apiExposure(s); metrics != "" {
		switch {
		case api != "":
			c.errf(o, "exposes both the API (port %s) and the API's /metrics (port %s): whatever publishes the API publishes /metrics too; give /metrics a Service of its own", api, metrics)
		case s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort:
			c.errf(o, "a %s Service exposes the API's /metrics (port %s) outside the cluster", s.Spec.Type, metrics)
		}
	}
	for _, sp := range s.Spec.Ports {
		tp := targetPort(sp)
		for _, w := range pods {
			found := false
			for _, ct := range w.tpl.Spec.Containers {
				for _, cp := range ct.Ports {
					if reaches(tp, cp) {
						found = true
						if sp.Protocol != "" && cp.Protocol != "" && sp.Protocol != cp.Protocol {
							c.errf(o, "port %s: protocol %s, the container's port is %s", sp.Name, sp.Protocol, cp.Protocol)
						}
					}
				}
			}
			if !found {
				c.errf(o, "port %s: targetPort %s is not a container port of %s", sp.Name, tp.String(), w.obj.Ref())
			}
		}
	}
}

// targetPort is where a Service port sends traffic: its targetPort, or its
// own port number when targetPort is not set.
func targetPort(sp corev1.ServicePort) intstr.IntOrString {
	if tp := sp.TargetPort; tp.Type == intstr.String || tp.IntVal != 0 {
		return tp
	}
	return intstr.FromInt32(sp.Port)
}

// reaches reports whether a Service's target port tp is container port cp.
func reaches(tp intstr.IntOrString, cp corev1.ContainerPort) bool {
	if tp.Type == intstr.String {
		return cp.Name == tp.StrVal
	}
	return cp.ContainerPort == tp.IntVal
}

// apiExposure names the ports of s that reach an HTQ API container's API
// listener and its separate /metrics listener ("" when none does).
func (c *checker) apiExposure(s *corev1.Service) (api, metrics string) {
	if len(s.Spec.Selector) == 0 {
		return "", ""
	}
	for _, w := range c.podsMatching(s.Namespace, labels.SelectorFromSet(s.Spec.Selector)) {
		for _, ct := range w.tpl.Spec.Containers {
			l, ok := c.apiPorts[w][ct.Name]
			if !ok {
				continue
			}
			for _, sp := range s.Spec.Ports {
				tp := targetPort(sp)
				for _, cp := range ct.Ports {
					if !reaches(tp, cp) {
						continue
					}
					name := sp.Name
					if name == "" {
						name = fmt.Sprint(sp.Port)
					}
					switch cp.ContainerPort {
					case l.api:
						api = name
					case l.metrics:
						metrics = name
					}
				}
			}
		}
	}
	return api, metrics
}

func (c *checker) selectsPods(o *Object, ns string, ls *metav1.LabelSelector, what string) []*workload {
	if ls == nil {
		c.errf(o, "no %s", what)
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		c.errf(o, "%s: %v", what, err)
		return nil
	}
	pods := c.podsMatching(ns, sel)
	if len(pods) == 0 {
		c.errf(o, "%s %s matches no pod template", what, sel)
	}
	return pods
}

func (c *checker) checkPDB(o *Object, p *policyv1.PodDisruptionBudget) {
	if p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil {
		c.errf(o, "neither minAvailable nor maxUnavailable")
	}
	if p.Spec.Selector == nil || (len(p.Spec.Selector.MatchLabels) == 0 && len(p.Spec.Selector.MatchExpressions) == 0) {
		c.errf(o, "empty selector")
		return
	}
	pods := c.selectsPods(o, p.Namespace, p.Spec.Selector, "selector")
	// A budget of minAvailable >= replicas (or maxUnavailable 0) blocks every drain.
	for _, w := range pods {
		if w.replicas == nil {
			continue
		}
		if p.Spec.MaxUnavailable != nil && p.Spec.MaxUnavailable.Type == intstr.Int && p.Spec.MaxUnavailable.IntVal == 0 {
			c.errf(o, "maxUnavailable 0 blocks every node drain")
		}
		if p.Spec.MinAvailable != nil && p.Spec.MinAvailable.Type == intstr.Int && p.Spec.MinAvailable.IntVal >= *w.replicas {
			c.errf(o, "minAvailable %d with %d replicas of %s blocks every node drain", p.Spec.MinAvailable.IntVal, *w.replicas, w.obj.Ref())
		}
	}
}

func (c *checker) scaleTarget(o *Object, ns, apiVersion, kind, name string) {
	if apiVersion != "" && apiVersion != "apps/v1" {
		c.errf(o, "scale target apiVersion %s, want apps/v1", apiVersion)
	}
	if kind == "" {
		kind = "Deployment"
	}
	w := c.workloadNamed(ns, kind, name)
	if w == nil {
		c.errf(o, "scale target %s %s is not in the rendering", kind, name)
		return
	}
	if w.replicas != nil {
		c.errf(o, "%s sets replicas: every upgrade would reset what the autoscaler chose", w.obj.Ref())
	}
}

func (c *checker) checkHPA(o *Object, h *autoscalingv2.HorizontalPodAutoscaler) {
	r := h.Spec.ScaleTargetRef
	c.scaleTarget(o, h.Namespace, r.APIVersion, r.Kind, r.Name)
	if h.Spec.MinReplicas != nil && *h.Spec.MinReplicas > h.Spec.MaxReplicas {
		c.errf(o, "minReplicas %d > maxReplicas %d", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	if len(h.Spec.Metrics) == 0 {
		c.errf(o, "no metrics")
	}
	for _, m := range h.Spec.Metrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil {
			w := c.workloadNamed(h.Namespace, "Deployment", r.Name)
			if w == nil {
				continue
			}
			for _, ct := range w.tpl.Spec.Containers {
				if _, ok := ct.Resources.Requests[m.Resource.Name]; !ok {
					c.errf(o, "scales on %s but container %s has no %s request", m.Resource.Name, ct.Name, m.Resource.Name)
				}
			}
		}
	}
}

func (c *checker) serviceNamed(ns, name string) *corev1.Service {
	for _, s := range c.services {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func (c *checker) checkIngress(o *Object, in *networkingv1.Ingress) {
	check := func(b *networkingv1.IngressBackend) {
		if b == nil || b.Service == nil {
			return
		}
		s := c.serviceNamed(in.Namespace, b.Service.Name)
		if s == nil {
			c.errf(o, "backend Service %s is not in the rendering", b.Service.Name)
			return
		}
		if _, metrics := c.apiExposure(s); metrics != "" {
			c.errf(o, "backend Service %s exposes the API's /metrics (port %s)", s.Name, metrics)
		}
		for _, p := range s.Spec.Ports {
			if (b.Service.Port.Name != "" && p.Name == b.Service.Port.Name) || (b.Service.Port.Name == "" && p.Port == b.Service.Port.Number) {
				return
			}
		}
		c.errf(o, "backend Service %s has no port %s%d", s.Name, b.Service.Port.Name, b.Service.Port.Number)
	}
	check(in.Spec.DefaultBackend)
	for _, r := range in.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			check(&p.Backend)
		}
	}
}

func (c *checker) checkNetworkPolicy(o *Object, np *networkingv1.NetworkPolicy) {
	pods := c.selectsPods(o, np.Namespace, &np.Spec.PodSelector, "podSelector")
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port == nil || p.Port.Type != intstr.String {
				continue
			}
			for _, w := range pods {
				found := false
				for _, ct := range w.tpl.Spec.Containers {
					for _, cp := range ct.Ports {
						found = found || cp.Name == p.Port.StrVal
					}
				}
				if !found {
					c.errf(o, "ingress port %s is not a named port of %s", p.Port.StrVal, w.obj.Ref())
				}
			}
		}
	}
}

// checkCustom checks the custom resources against the rest of the rendering.
func (c *checker) checkCustom(o *Object, u *unstructured.Unstructured) {
	ns := u.GetNamespace()
	switch o.GVK.Kind {
	case "ScaledObject":
		name, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "name")
		apiVersion, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "apiVersion")
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "kind")
		c.scaleTarget(o, ns, apiVersion, kind, name)
		triggers, _, _ := unstructured.NestedSlice(u.Object, "spec", "triggers")
		if len(triggers) == 0 {
			c.errf(o, "no triggers")
		}
		for _, other := range c.objs {
			if h, ok := other.Obj.(*autoscalingv2.HorizontalPodAutoscaler); ok && h.Namespace == ns && h.Spec.ScaleTargetRef.Name == name {
				c.errf(o, "%s scales the same target: they would fight", other.Ref())
			}
		}
	case "ServiceMonitor":
		sel := selectorAt(c, o, u, "spec", "selector")
		if sel == nil {
			return
		}
		nss := []string{ns}
		if names, ok, _ := unstructured.NestedStringSlice(u.Object, "spec", "namespaceSelector", "matchNames"); ok && len(names) > 0 {
			nss = names
		}
		var svcs []*corev1.Service
		for _, s := range c.services {
			if slices.Contains(nss, s.Namespace) && sel.Matches(labels.Set(s.Labels)) {
				svcs = append(svcs, s)
			}
		}
		if len(svcs) == 0 {
			c.errf(o, "selector %s matches no Service", sel)
			return
		}
		eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
		if len(eps) == 0 {
			c.errf(o, "no endpoints")
		}
		for _, e := range eps {
			port, _, _ := unstructured.NestedString(e.(map[string]any), "port")
			n := 0
			for _, s := range svcs {
				for _, p := range s.Spec.Ports {
					if p.Name == port {
						n++
					}
				}
			}
			if n == 0 {
				c.errf(o, "endpoint port %q is not a port of any selected Service", port)
			}
		}
		// Every HTQ role exports metrics (and the alert rules expect all
		// three jobs): each one's pods are behind a selected Service that
		// has an endpoint port.
		for _, w := range c.workloads {
			if !slices.Contains(nss, w.ns()) || !runsHTQ(w) {
				continue
			}
			scraped := false
			for _, s := range svcs {
				if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.tpl.Labels)) {
					continue
				}
				for _, p := range s.Spec.Ports {
					for _, e := range eps {
						port, _, _ := unstructured.NestedString(e.(map[string]any), "port")
						scraped = scraped || p.Name == port
					}
				}
			}
			if !scraped {
				c.errf(o, "scrapes no pod of %s: no selected Service with an endpoint port selects it", w.obj.Ref())
			}
		}
	case "PodMonitor":
		sel := selectorAt(c, o, u, "spec", "selector")
		if sel != nil && len(c.podsMatching(ns, sel)) == 0 {
			c.errf(o, "selector %s matches no pod template", sel)
		}
	case "PrometheusRule":
		groups, _, _ := unstructured.NestedSlice(u.Object, "spec", "groups")
		if len(groups) == 0 {
			c.errf(o, "no rule groups")
		}
		for _, g := range groups {
			gm, _ := g.(map[string]any)
			rules, _, _ := unstructured.NestedSlice(gm, "rules")
			if len(rules) == 0 {
				c.errf(o, "group %v has no rules", gm["name"])
			}
			for _, r := range rules {
				rm, _ := r.(map[string]any)
				_, isAlert := rm["alert"]
				_, isRecord := rm["record"]
				if isAlert == isRecord {
					c.errf(o, "group %v: a rule needs exactly one of alert and record: %v", gm["name"], rm)
				}
				if e, _ := rm["expr"].(string); strings.TrimSpace(e) == "" {
					c.errf(o, "group %v: rule %v has no expr", gm["name"], rm["alert"])
				}
			}
		}
	}
}

// runsHTQ reports whether a workload runs an HTQ binary.
func runsHTQ(w *workload) bool {
	for i := range w.tpl.Spec.Containers {
		if htqRole(&w.tpl.Spec.Containers[i]) != "" {
			return true
		}
	}
	return false
}

func selectorAt(c *checker, o *Object, u *unstructured.Unstructured, fields ...string) labels.Selector {
	m, ok, _ := unstructured.NestedMap(u.Object, fields...)
	if !ok {
		c.errf(o, "no %s", strings.Join(fields, "."))
		return nil
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &ls); err != nil {
		c.errf(o, "%s: %v", strings.Join(fields, "."), err)
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		c.errf(o, "%s: %v", strings.Join(fields, "."), err)
		return nil
	}
	return sel
}
