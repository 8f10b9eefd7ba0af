// Command site-controller runs Skupper v2 sites on Docker, Podman or Linux
// (systemd) from resource files in a namespace directory.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// errProblems makes the process exit 1 after the problems were printed.
var errProblems = errors.New("problems found")

func main() {
	root := newRootCommand()
	stop := profile(os.Getenv("SITE_CONTROLLER_CPUPROFILE"))
	err := root.Execute()
	stop()
	heapProfile(os.Getenv("SITE_CONTROLLER_MEMPROFILE"))
	if err != nil {
		if !errors.Is(err, errProblems) {
			fmt.Fprintln(os.Stderr, "site-controller:", err)
		}
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "site-controller",
		Short:         "Run Skupper v2 sites on Docker, Podman or Linux from resource files",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCommand(), newValidateCommand(), newRenderCommand(), newStatusCommand(), newLinkCommand(), newTokenCommand(), newVersionCommand(),
		newDebugCommand(), newManCommand())
	// cobra's completion command (bash, zsh, fish, powershell), hidden
	// from the help: the release packages install its scripts
	root.CompletionOptions.HiddenDefaultCmd = true
	return root
}

// profile writes the process's CPU profile to path (the scale harnesses'
// SITE_CONTROLLER_CPUPROFILE), until the returned func is called; nothing
// when path is "".
func profile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "site-controller: cpu profile:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "site-controller: cpu profile:", err)
		}
	}
}

// heapProfile writes the heap profile of what the process still holds as
// it ends (the harnesses' SITE_CONTROLLER_MEMPROFILE); nothing when path is
// "".
func heapProfile(path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "site-controller: heap profile:", err)
	}
}
