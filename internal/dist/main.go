// Command dist makes the release artifacts from static site-controller
// binaries that `make dist` built: a versioned .tar.gz per architecture
// (the binary, README, LICENSE when there is one, the systemd units,
// completions and man pages), a Debian package per architecture made with
// nfpm (github.com/goreleaser/nfpm/v2) as a library, and SHA256SUMS.
//
// It is a module of its own, never shipped and never linked into the
// daemon: nfpm's dependencies (and the versions of shared ones it would
// raise: golang.org/x/net, x/crypto, klauspost/compress, go-git…) stay out
// of the daemon's go.mod, so adding packaging changed nothing of what the
// daemon is built from.
//
//	go run . -version v1.2.3 -root ../.. -build ../../dist/build -docs ../../dist/build/docs -out ../../dist
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	var o Options
	var arches, epoch string
	flag.StringVar(&o.Version, "version", "", "the version (git describe: v1.2.3, v1.2.3-4-gabcdef, abcdef-dirty)")
	flag.StringVar(&o.Root, "root", "../..", "the repository (README.md, LICENSE, contrib/systemd)")
	flag.StringVar(&o.Build, "build", "../../dist/build", "directory holding linux-<arch>/site-controller")
	flag.StringVar(&o.Docs, "docs", "../../dist/build/docs", "directory holding completions/ and man/ (site-controller completion, site-controller man)")
	flag.StringVar(&o.Out, "out", "../../dist", "where the archives, packages and SHA256SUMS go")
	flag.StringVar(&arches, "arch", "amd64,arm64", "architectures, comma-separated")
	flag.StringVar(&epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "file times in archives and packages, seconds since 1970 (the commit's time)")
	flag.Parse()
	o.Arches = strings.Split(arches, ",")
	if epoch != "" {
		var sec int64
		if _, err := fmt.Sscan(epoch, &sec); err != nil {
			fmt.Fprintf(os.Stderr, "dist: -source-date-epoch %q: %v\n", epoch, err)
			os.Exit(2)
		}
		o.MTime = time.Unix(sec, 0).UTC()
	}
	made, err := Make(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
	for _, f := range made {
		fmt.Println(f)
	}
}
