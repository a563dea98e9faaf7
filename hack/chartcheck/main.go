// Command chartcheck checks rendered Kubernetes manifests (helm template
// output, deploy/k8s) beyond what the API server validates: it decodes every
// object strictly with the Kubernetes Go types (unknown fields, duplicate
// fields and wrong types fail), then checks that the objects fit together and
// fit HTQ: selectors match pod labels, Services, probes and ports agree with
// the listen addresses HTQ is configured with, every container has
// resources, probes and a locked-down security context, the dispatcher gets
// longer than its shutdown grace to stop, budgets and autoscalers point at
// real workloads, no Redis password is on a command line or in a ConfigMap
// (redis.conf lines, Redis URLs), and the API's /metrics is not on the
// Service that publishes the API.
//
//	chartcheck [-readme README.md] [-want Kind,...] [-absent Kind,...] FILE...
//
// FILE is a multi-document YAML file, or "-" for standard input. All files
// together are one rendering. Exit status 1 lists every problem.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type kindList []string

func (k *kindList) String() string { return strings.Join(*k, ",") }
func (k *kindList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*k = append(*k, s)
		}
	}
	return nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chartcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	readme := fs.String("readme", "", "README.md whose configuration table lists HTQ's keys and variables")
	var want, absent kindList
	fs.Var(&want, "want", "kinds that must be rendered (comma-separated, repeatable)")
	fs.Var(&absent, "absent", "kinds that must not be rendered (comma-separated, repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "chartcheck: no input files (use - for standard input)")
		return 2
	}
	var known *Known
	if *readme != "" {
		f, err := os.Open(*readme)
		if err != nil {
			fmt.Fprintln(stderr, "chartcheck:", err)
			return 2
		}
		known, err = ParseReadme(f)
		_ = f.Close()
		if err == nil && len(known.Keys) == 0 {
			err = fmt.Errorf("%s: no configuration table rows found", *readme)
		}
		if err != nil {
			fmt.Fprintln(stderr, "chartcheck:", err)
			return 2
		}
	}
	var objs []*Object
	var probs []string
	for _, name := range fs.Args() {
		r := stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				fmt.Fprintln(stderr, "chartcheck:", err)
				return 2
			}
			defer f.Close()
			r = f
		}
		o, errs := Decode(name, r)
		objs = append(objs, o...)
		for _, e := range errs {
			probs = append(probs, e.Error())
		}
	}
	probs = append(probs, Check(objs, known)...)
	kinds := map[string]bool{}
	for _, o := range objs {
		kinds[o.GVK.Kind] = true
	}
	for _, k := range want {
		if !kinds[k] {
			probs = append(probs, fmt.Sprintf("no %s was rendered (wanted)", k))
		}
	}
	for _, k := range absent {
		if kinds[k] {
			probs = append(probs, fmt.Sprintf("a %s was rendered (expected none)", k))
		}
	}
	if len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(stdout, "FAIL", p)
		}
		fmt.Fprintf(stdout, "chartcheck: %d problem(s) in %d object(s) of %s\n", len(probs), len(objs), strings.Join(fs.Args(), " "))
		return 1
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range kinds {
			if !yield(k) {
				return
			}
		}
	})
	fmt.Fprintf(stdout, "chartcheck: ok: %d objects (%s) in %s\n", len(objs), strings.Join(names, ", "), strings.Join(fs.Args(), " "))
	return 0
}
