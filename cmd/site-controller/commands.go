package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/daemon"
	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/status"
)

// version is set with -ldflags "-X main.version=…"; otherwise taken from
// the build information.
var version = ""

func controllerVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// oneShot tunes the garbage collector for a command that reads a whole
// namespace and holds it until it ends: collecting at 30% growth keeps the
// peak memory near what it holds, at no measurable cost in time (the
// render harness: 0.22 s either way, 57 MB instead of 69 MB peak RSS for
// 5000 resources). GOGC, when set, wins.
func oneShot() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(30)
	}
}

// dataHomeFlag registers --data-home. The flag holds an absolute, clean
// path whatever it was given (make run passes "examples"): every path the
// commands derive from it reaches engines (bind mounts), units and the
// router, which take absolute paths only, and Docker takes a relative one
// for a volume name.
func dataHomeFlag(cmd *cobra.Command, p *string) {
	*p = namespace.DataHome()
	if abs, err := absolutePath(*p); err == nil {
		*p = abs
	}
	cmd.Flags().Var((*absPathValue)(p), "data-home", "data home holding namespaces/<ns>/ (made absolute against the working directory)")
}

// absolutePath is path made absolute and clean; "" is an error.
func absolutePath(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("making %q absolute: %w", path, err)
	}
	return abs, nil
}

// absPathValue is a flag value that is always an absolute, clean path.
type absPathValue string

func (v *absPathValue) Set(s string) error {
	abs, err := absolutePath(s)
	if err != nil {
		return err
	}
	*v = absPathValue(abs)
	return nil
}

func (v *absPathValue) String() string { return string(*v) }
func (v *absPathValue) Type() string   { return "path" }

// namespacesOrAll returns args, or every namespace under dataHome.
// withUsage adds the command's usage line to an error in its arguments.
func withUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return fmt.Errorf("%w\nusage: %s", err, cmd.UseLine())
		}
		return nil
	}
}

// namespacesOrAll returns the namespaces named, each of which must exist,
// or every namespace of the data home.
func namespacesOrAll(dataHome string, args []string) ([]string, error) {
	if len(args) > 0 {
		for _, name := range args {
			dir, err := namespace.Open(dataHome, name)
			if err != nil {
				return nil, err
			}
			if st, err := os.Stat(dir.Path); err != nil || !st.IsDir() {
				return nil, fmt.Errorf("namespace %s does not exist: no directory %s", name, dir.Path)
			}
		}
		return args, nil
	}
	names, err := namespace.List(dataHome)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no namespaces under %s", namespace.Root(dataHome))
	}
	return names, nil
}

// existingNamespace opens namespace name, which must exist.
func existingNamespace(dataHome, name string) (namespace.Dir, error) {
	if _, err := namespacesOrAll(dataHome, []string{name}); err != nil {
		return namespace.Dir{}, err
	}
	return namespace.Open(dataHome, name)
}

func newValidateCommand() *cobra.Command {
	var dataHome, platform string
	cmd := &cobra.Command{
		Use:   "validate [NAMESPACE...]",
		Short: "Check the resources of namespaces and print one line per problem",
		Long: "Check the resources of the given namespaces (all, when none is given) without writing anything:\n" +
			"every check a pass makes before it starts a router (credentials present, readable and matching,\n" +
			"reserved names and ports), so that exit status 0 means the pass will find no problem.\n" +
			"A namespace is checked for the platform it runs on: its internal/platform.yaml, else --platform\n" +
			"(as run's). validate starts nothing and asks no engine, so with auto (the default) the checks of\n" +
			"a platform (a Connector's selector on linux) are skipped for namespaces without\n" +
			"internal/platform.yaml, and it says so once, on stderr.\n" +
			"Each problem is printed as FILE:LINE: Kind/name: field: message. Exit status 0 when there\n" +
			"are no errors (warnings allowed), 1 otherwise.",
		RunE: func(cmd *cobra.Command, args []string) error {
			oneShot()
			switch platform {
			case "auto", "podman", "docker", "linux", "none":
			default:
				return fmt.Errorf("--platform must be auto, podman, docker, linux or none, got %q", platform)
			}
			names, err := namespacesOrAll(dataHome, args)
			if err != nil {
				return err
			}
			bad := false
			var unknown []string // namespaces checked for no platform
			for _, name := range names {
				dir, err := namespace.Open(dataHome, name)
				if err != nil {
					return err
				}
				v, err := controller.ValidateNamespace(dir, controller.ValidateOptions{Platform: platform})
				if err != nil {
					return err
				}
				if v.Platform == "" {
					unknown = append(unknown, name)
				}
				for _, p := range v.Problems {
					fmt.Fprintln(cmd.OutOrStdout(), p.In(dir.Path))
				}
				bad = bad || resources.HasErrors(v.Problems)
			}
			if len(unknown) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "platform auto: validate asks no engine, so the checks of a platform (a Connector's selector on linux) were skipped for %s, which %s no internal/platform.yaml; give --platform to check them\n",
					strings.Join(unknown, ", "), map[bool]string{true: "has", false: "have"}[len(unknown) == 1])
			}
			if bad {
				return errProblems
			}
			return nil
		},
	}
	dataHomeFlag(cmd, &dataHome)
	cmd.Flags().StringVar(&platform, "platform", "auto", "platform of namespaces without internal/platform.yaml, as run's: auto (not resolved: platform checks skipped), podman, docker, linux or none")
	return cmd
}

func newRenderCommand() *cobra.Command {
	var dataHome, platform string
	cmd := &cobra.Command{
		Use:   "render NAMESPACE",
		Short: "Run one full pass over a namespace: write runtime/ and status, start nothing",
		Long: "Read and validate the namespace's input, then write the router configuration, credentials\n" +
			"and status files under runtime/, printing each file that changed. No container or unit is\n" +
			"started. Problems are printed to stderr; exit status 1 when there are errors.",
		Args: withUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			oneShot()
			switch platform {
			case "podman", "docker", "linux":
			default:
				return fmt.Errorf("--platform must be podman, docker or linux, got %q", platform)
			}
			dir, err := namespace.Open(dataHome, args[0])
			if err != nil {
				return err
			}
			if _, err := os.Stat(dir.Path); err != nil {
				return fmt.Errorf("namespace %s: %w", args[0], err)
			}
			// a running daemon owns runtime/: a render beside it would leave
			// a "rendered only" status the daemon has no reason to rewrite
			release, err := daemon.LockDataHome(dataHome)
			if err != nil {
				return fmt.Errorf("%w\na site-controller daemon manages %s and renders %s itself; see its result with "+
					"'site-controller status %s', or stop the daemon to render by hand", err, dataHome, args[0], args[0])
			}
			defer release()
			r := controller.New(controller.Options{DataHome: dataHome, Platform: platform, Version: controllerVersion()})
			res, _, err := r.Render(context.Background(), args[0])
			var printed error
			if res != nil {
				for _, p := range res.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), p.In(dir.Path))
				}
				// buffered: a write per 4 KiB of the list, not one per
				// file (5,000 after a runtime/ removed)
				out := bufio.NewWriter(cmd.OutOrStdout())
				for _, c := range res.Changed {
					fmt.Fprintln(out, filepath.Join(dir.Path, c))
				}
				printed = out.Flush()
			}
			if err != nil {
				return err // the render's error before the printing's
			}
			if printed != nil {
				return fmt.Errorf("printing the files changed: %w", printed)
			}
			if resources.HasErrors(res.Problems) {
				return errProblems
			}
			return nil
		},
	}
	dataHomeFlag(cmd, &dataHome)
	cmd.Flags().StringVar(&platform, "platform", "podman", "platform for namespaces without internal/platform.yaml: podman, docker or linux")
	return cmd
}

func newStatusCommand() *cobra.Command {
	var dataHome, output string
	var network bool
	cmd := &cobra.Command{
		Use:   "status [NAMESPACE]",
		Short: "Show the status of every resource, from runtime/resources",
		Long: "Show the status of every resource of a namespace (all, when none is given), as the last pass\n" +
			"wrote it under runtime/resources. -o wide prints messages whole; -o yaml and -o json print\n" +
			"every status with its conditions, for scripts. --network lists every site of the network\n" +
			"each namespace's site is in, with its links and services, as its routers report them.",
		Args: withUsage(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "", "wide", "yaml", "json":
			default:
				return fmt.Errorf("-o must be wide, yaml or json, got %q", output)
			}
			names, err := namespacesOrAll(dataHome, args)
			if err != nil {
				return err
			}
			var all []resourceStatus
			for _, name := range names {
				rs, err := readStatuses(dataHome, name)
				if err != nil {
					return err
				}
				all = append(all, rs...)
			}
			if network {
				return printNetwork(cmd.OutOrStdout(), all, output == "wide")
			}
			switch output {
			case "yaml":
				enc := yaml.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent(2)
				if err := enc.Encode(map[string]any{"items": all}); err != nil {
					return err
				}
				return enc.Close()
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"items": all})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAMESPACE\tKIND\tNAME\tSTATUS\tMATCHED\tMESSAGE")
			seen := map[string]bool{}
			for _, r := range all {
				seen[r.Namespace] = true
				msg := r.Message
				if r.Error != "" {
					msg = r.Error
				}
				if output != "wide" {
					msg = oneLine(msg)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.Kind, r.Name, cmp.Or(r.Status.Status, "?"), matched(r), msg)
			}
			for _, name := range names {
				if !seen[name] {
					fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tno status yet: run render or the daemon\n", name)
				}
			}
			return tw.Flush()
		},
	}
	dataHomeFlag(cmd, &dataHome)
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide (messages whole), yaml or json")
	cmd.Flags().BoolVar(&network, "network", false, "list every site of the network with its links and services")
	return cmd
}

// printNetwork prints, for each namespace's Site, the network its routers
// report: every site, its links and its services.
func printNetwork(w io.Writer, all []resourceStatus, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range all {
		if r.Kind != resources.KindSite || r.Error != "" {
			continue
		}
		if r.SitesInNetwork == nil {
			fmt.Fprintf(tw, "namespace %s, site %s: no network view (%s)\n\n", r.Namespace, r.Name,
				cmp.Or(map[bool]string{true: "it neither accepts nor makes links"}[len(r.Endpoints) == 0], "its router has not reported yet"))
			continue
		}
		fmt.Fprintf(tw, "namespace %s, site %s: %d site(s) in the network\n", r.Namespace, r.Name, *r.SitesInNetwork)
		fmt.Fprintln(tw, "SITE\tID\tNAMESPACE\tPLATFORM\tLINKS\tSERVICES")
		for _, s := range r.Network {
			var links, services []string
			for _, l := range s.Links {
				state := "up"
				if !l.Operational {
					state = "down"
				}
				links = append(links, fmt.Sprintf("%s→%s (%s)", l.Name, cmp.Or(l.RemoteSiteName, "?"), state))
			}
			for _, sv := range s.Services {
				var what []string
				if len(sv.Listeners) > 0 {
					what = append(what, fmt.Sprintf("%d listener(s)", len(sv.Listeners)))
				}
				if len(sv.Connectors) > 0 {
					what = append(what, fmt.Sprintf("%d connector(s)", len(sv.Connectors)))
				}
				services = append(services, sv.RoutingKey+" ("+strings.Join(what, ", ")+")")
			}
			id := s.ID
			if !wide && len(id) > 8 {
				id = id[:8]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, id, cmp.Or(s.Namespace, "-"), cmp.Or(s.Platform, "-"),
				cmp.Or(strings.Join(links, ", "), "-"), cmp.Or(strings.Join(services, ", "), "-"))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// resourceStatus is one resource's status, as status prints it (and the
// console serves it).
type resourceStatus = status.Resource

func matched(r resourceStatus) string {
	switch {
	case r.RemoteSiteName != "":
		return "→ " + r.RemoteSiteName
	case r.HasMatchingConnector != nil:
		return fmt.Sprint(*r.HasMatchingConnector)
	case r.HasMatchingListener != nil:
		return fmt.Sprint(*r.HasMatchingListener)
	}
	return "-"
}

// readStatuses reads the status files of a namespace.
func readStatuses(dataHome, name string) ([]resourceStatus, error) {
	dir, err := namespace.Open(dataHome, name)
	if err != nil {
		return nil, err
	}
	rs, err := status.ReadResources(dir)
	if err != nil {
		return nil, err
	}
	return rs, nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func newVersionCommand() *cobra.Command {
	var dataHome string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the controller's version, and each running site's router version as the router reports it",
		Args:  withUsage(cobra.NoArgs),
		Run: func(cmd *cobra.Command, args []string) {
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "site-controller", controllerVersion())
			names, err := namespace.List(dataHome)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return
			}
			for _, name := range names {
				dir, err := namespace.Open(dataHome, name)
				if err != nil {
					continue
				}
				if _, err := os.Stat(dir.RouterConfig()); err != nil {
					continue // no site rendered
				}
				port, ok := dir.ReservedManagementPort()
				if !ok {
					continue
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
				v, err := live.RouterVersion(ctx, dir, port)
				cancel()
				if err != nil {
					fmt.Fprintf(out, "namespace %s: router not reachable: %v\n", name, err)
					continue
				}
				fmt.Fprintf(out, "namespace %s: skupper-router %s\n", name, v)
			}
		},
	}
	dataHomeFlag(cmd, &dataHome)
	return cmd
}
