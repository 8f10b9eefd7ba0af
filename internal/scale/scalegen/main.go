// Command scalegen writes a large namespace for the scale harness:
//
//	go run ./internal/scale/scalegen -data-home /tmp/scale -listeners 2500 -connectors 2500
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/site-controller/site-controller/internal/scale"
)

func main() {
	home := flag.String("data-home", "", "data home to write namespaces/<ns>/ into")
	ns := flag.String("namespace", "scale", "namespace name")
	l := flag.Int("listeners", 2500, "number of Listeners")
	c := flag.Int("connectors", 2500, "number of Connectors")
	flag.Parse()
	if *home == "" {
		fmt.Fprintln(os.Stderr, "scalegen: -data-home is required")
		os.Exit(2)
	}
	if err := scale.Generate(*home, *ns, *l, *c); err != nil {
		fmt.Fprintln(os.Stderr, "scalegen:", err)
		os.Exit(1)
	}
}
