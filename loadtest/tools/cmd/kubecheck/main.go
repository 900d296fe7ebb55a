// Command kubecheck validates Kubernetes manifests (a multi-document YAML
// stream on stdin, e.g. `helm template`) against the API types of the
// pinned k8s.io modules: every document of a built-in kind must decode
// strictly (no unknown or duplicate fields, right types) and pass the
// checks below; other kinds (CRDs such as ServiceMonitor) need apiVersion,
// kind and metadata.name. It prints one line per document and exits 1 on
// the first stream with problems.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kubecheck:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true, Strict: true})
	r := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var problems []error
	n := 0
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		n++
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			problems = append(problems, fmt.Errorf("document %d: %w", n, err))
			continue
		}
		what := fmt.Sprintf("%s %s", meta.Kind, meta.Metadata.Name)
		if meta.APIVersion == "" || meta.Kind == "" || meta.Metadata.Name == "" {
			problems = append(problems, fmt.Errorf("document %d (%s): apiVersion, kind and metadata.name are required", n, what))
			continue
		}
		gvk := schema.FromAPIVersionAndKind(meta.APIVersion, meta.Kind)
		if !scheme.Scheme.Recognizes(gvk) {
			fmt.Fprintf(out, "ok   %s (%s: not a built-in kind, checked for apiVersion, kind, name)\n", what, meta.APIVersion)
			continue
		}
		if _, _, err := strict.Decode(doc, &gvk, nil); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", what, err))
			continue
		}
		fmt.Fprintf(out, "ok   %s (%s)\n", what, meta.APIVersion)
	}
	if n == 0 {
		return errors.New("no documents on stdin")
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	fmt.Fprintf(out, "kubecheck: %d documents valid\n", n)
	return nil
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}
