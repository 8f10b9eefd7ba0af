// Command site-controller runs Skupper v2 sites on Docker, Podman or Linux
// (systemd) from resource files in a namespace directory.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// errProblems makes the process exit 1 after the problems were printed.
var errProblems = errors.New("problems found")

func main() {
	root := newRootCommand()
	if err := root.Execute(); err != nil {
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
