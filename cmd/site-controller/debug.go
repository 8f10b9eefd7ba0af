package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/site-controller/site-controller/pkg/dump"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/runtime/systemd"
)

func newDebugCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "debug",
		Short: "Collect what it takes to look into a problem",
	}
	cmd.AddCommand(newDebugDumpCommand())
	return cmd
}

func newDebugDumpCommand() *cobra.Command {
	var dataHome, output, httpAddr, endpoint, scope, binary string
	var timeout, callTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "dump [NAMESPACE...]",
		Short: "Write one .tar.gz with versions, inputs, statuses, router state and logs, and host facts; no credentials",
		Long: "Collect, for the given namespaces (all, when none is given): the controller's, the engines' and\n" +
			"each router's versions; the input and the statuses (redacted); skrouterd.json; what the running\n" +
			"router says over management (router, connections, links, nodes, addresses, memory, listeners,\n" +
			"connectors, TLS profiles); the router container's inspect and its last 1000 log lines (or its\n" +
			"unit and journal on linux); the daemon's /metrics (--http, else the address a running daemon of\n" +
			"the data home serves); and host facts (kernel, open files and inotify limits).\n" +
			"It holds no credential: key files and link files are listed, never read; a Secret's data and\n" +
			"every code, password and key in resource files is <redacted>; any private key block is cut out.\n" +
			"What cannot be collected is listed in summary.yaml; the rest is collected all the same.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				if _, err := namespacesOrAll(dataHome, args); err != nil {
					return err
				}
			}
			sc, err := systemd.ParseScope(scope)
			if err != nil {
				return fmt.Errorf("--systemd-scope: %w", err)
			}
			now := time.Now()
			if output == "" {
				output = "site-controller-dump-" + now.UTC().Format("20060102-150405") + ".tar.gz"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			opts := dump.Options{
				DataHome: dataHome, Namespaces: args, Version: controllerVersion(), HTTP: httpAddr,
				Endpoints: engineCandidates(endpoint), SystemdScope: string(sc), RouterBinary: runtime.RouterBinary(binary),
				CallTimeout: callTimeout, Now: now,
			}
			write := func(w io.Writer) (*dump.Summary, error) { return dump.Write(ctx, w, opts) }
			var summary *dump.Summary
			if output == "-" {
				summary, err = write(cmd.OutOrStdout())
			} else {
				summary, err = writeFileWith(output, write)
			}
			if err != nil {
				return err
			}
			if output != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d namespaces", output, len(summary.Namespaces))
				if n := len(summary.Problems); n > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "; %d things could not be collected (summary.yaml says which and why)", n)
				}
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			return nil
		},
	}
	dataHomeFlag(cmd, &dataHome)
	cmd.Flags().StringVarP(&output, "output", "o", "", "the archive to write (default site-controller-dump-<time>.tar.gz here; - for stdout)")
	cmd.Flags().StringVar(&httpAddr, "http", "", "the daemon's --http address, for /metrics (default: the one a running daemon of the data home serves)")
	cmd.Flags().StringVar(&endpoint, "container-endpoint", "", "engine socket, unix:///path (default: as run finds them)")
	cmd.Flags().StringVar(&scope, "systemd-scope", string(systemd.DefaultScope()), "systemd manager of linux-platform routers: system or user")
	cmd.Flags().StringVar(&binary, "router-binary", "", "skrouterd, for its version (default: skrouterd on PATH, or /usr/sbin/skrouterd)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "the most the whole dump may take")
	cmd.Flags().DurationVar(&callTimeout, "call-timeout", 10*time.Second, "the most each call to an engine, router, systemd or the daemon may take")
	return cmd
}

// writeFileWith writes what write makes into path (0600: it says much of
// the host), through a temporary file beside it.
func writeFileWith[T any](path string, write func(io.Writer) (T, error)) (T, error) {
	var zero T
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return zero, fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	v, err := write(f)
	if err != nil {
		f.Close()
		return zero, err
	}
	if err := f.Close(); err != nil {
		return zero, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return zero, fmt.Errorf("writing %s: %w", path, err)
	}
	return v, nil
}
