package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest document.
type Object struct {
	Source string // file#index, for messages
	GVK    schema.GroupVersionKind
	Meta   metav1.Object
	Obj    runtime.Object // a typed object, or *unstructured.Unstructured for CRD kinds
}

// Ref names the object in messages.
func (o *Object) Ref() string {
	ns := o.Meta.GetNamespace()
	if ns != "" {
		ns += "/"
	}
	return fmt.Sprintf("%s %s %s%s", o.Source, o.GVK.Kind, ns, o.Meta.GetName())
}

// crdKinds are the custom resources the chart may render. They are decoded
// as unstructured objects: the real API server validates them against the
// CRDs (make k8s-validate); here their apiVersion and kind must be known.
var crdKinds = map[schema.GroupVersionKind]bool{
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}: true,
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "PodMonitor"}:     true,
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}: true,
	{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}:           true,
	{Group: "keda.sh", Version: "v1alpha1", Kind: "TriggerAuthentication"}:  true,
}

var (
	scheme = runtime.NewScheme()
	// strictDecoder rejects unknown and duplicate fields; wrong types fail
	// in any mode. It does not convert or default.
	strictDecoder runtime.Decoder
)

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme,
		networkingv1.AddToScheme, batchv1.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	strictDecoder = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// Decode reads every YAML document of r. Documents that are empty or only
// comments are skipped; every other one must decode strictly.
func Decode(name string, r io.Reader) ([]*Object, []error) {
	var objs []*Object
	var errs []error
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for i := 0; ; i++ {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		src := fmt.Sprintf("%s#%d", name, i)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: read: %w", src, err))
			break
		}
		o, err := decodeDoc(src, doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs, errs
}

func decodeDoc(src string, doc []byte) (*Object, error) {
	// YAMLToJSONStrict refuses duplicate keys, which plain YAML decoding
	// resolves silently (the last one wins).
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %w", src, err)
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, fmt.Errorf("%s: not a Kubernetes object: %w", src, err)
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, fmt.Errorf("%s: apiVersion and kind are required", src)
	}
	gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
	o := &Object{Source: src, GVK: gvk}
	switch {
	case scheme.Recognizes(gvk):
		obj, _, err := strictDecoder.Decode(js, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", src, gvk.Kind, err)
		}
		o.Obj = obj
	case crdKinds[gvk]:
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", src, gvk.Kind, err)
		}
		o.Obj = u
	default:
		return nil, fmt.Errorf("%s: unknown apiVersion/kind %s %s (not a built-in type of Kubernetes 1.36 nor a known CRD kind)", src, tm.APIVersion, tm.Kind)
	}
	m, err := metaOf(o.Obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	o.Meta = m
	if m.GetName() == "" {
		return nil, fmt.Errorf("%s: %s without metadata.name", src, gvk.Kind)
	}
	return o, nil
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}
