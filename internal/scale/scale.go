// Package scale generates large namespaces for benchmarks and the scale
// harness: one Site and any number of Listeners and Connectors, one file
// each, as Skupper's CLI writes them.
package scale

import (
	"fmt"
	"os"
	"path/filepath"
)

// Generate writes namespace ns under dataHome with the given numbers of
// Listeners and Connectors. Listener i binds 127.0.0.1:(10000+i); the
// routing keys pair Listener i with Connector i.
func Generate(dataHome, ns string, listeners, connectors int) error {
	dir := filepath.Join(dataHome, "namespaces", ns, "input", "resources")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	write := func(name, content string) error {
		return os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	if err := write("Site-scale.yaml", "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: scale\n"); err != nil {
		return err
	}
	for i := 0; i < listeners; i++ {
		if err := write(fmt.Sprintf("Listener-l%d.yaml", i), fmt.Sprintf(
			"apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l%d\nspec:\n  routingKey: key-%d\n  host: 127.0.0.1\n  port: %d\n", i, i, 10000+i)); err != nil {
			return err
		}
	}
	for i := 0; i < connectors; i++ {
		if err := write(fmt.Sprintf("Connector-c%d.yaml", i), fmt.Sprintf(
			"apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: c%d\nspec:\n  routingKey: key-%d\n  host: backend-%d.example\n  port: 8080\n", i, i, i)); err != nil {
			return err
		}
	}
	return nil
}

// Pairs writes n Listener and n Connector files into dir (an
// input/resources directory), and no Site: the background of a site that
// has one. Listener bg<i> binds 127.0.0.1:(from+i); Connector bg<i>, with
// the same routing key, points at 127.0.0.1:9 (discard), never dialled
// unless a connection comes through the Listener.
func Pairs(dir string, n, from int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for i := range n {
		l := fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: bg%d\nspec:\n  routingKey: bg-%d\n  host: 127.0.0.1\n  port: %d\n", i, i, from+i)
		c := fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: bg%d\nspec:\n  routingKey: bg-%d\n  host: 127.0.0.1\n  port: 9\n", i, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("Listener-bg%d.yaml", i)), []byte(l), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("Connector-bg%d.yaml", i)), []byte(c), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Namespaces writes nsCount namespaces ns000, ns001, … under dataHome,
// each of perNS resources: a Site, then Listeners and Connectors in
// turn, every Listener on a port of its own (namespaces of one host
// cannot share one). The data home of the cold-start harness and
// benchmark.
func Namespaces(dataHome string, nsCount, perNS int) error {
	for n := range nsCount {
		dir := filepath.Join(dataHome, "namespaces", fmt.Sprintf("ns%03d", n), "input", "resources")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		files := map[string]string{"Site-s.yaml": fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s%d\n", n)}
		for i := 1; i < perNS; i++ {
			if i%2 == 1 {
				files[fmt.Sprintf("Listener-l%d.yaml", i)] = fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l%d\nspec:\n  routingKey: k%d\n  host: 127.0.0.1\n  port: %d\n", i, i, 20000+n*perNS+i)
			} else {
				files[fmt.Sprintf("Connector-c%d.yaml", i)] = fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: c%d\nspec:\n  routingKey: k%d\n  host: backend\n  port: 8080\n", i, i-1)
			}
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
