package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/site-controller/site-controller/pkg/runtime"
)

// newManCommand writes a man page for each command (site-controller.1,
// site-controller-run.1, …) into a directory: the release packages carry
// them. Hidden: it is for packagers.
func newManCommand() *cobra.Command {
	var date string
	cmd := &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages of every command into DIR",
		Hidden: true,
		Args:   withUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			header := &doc.GenManHeader{Title: "SITE-CONTROLLER", Section: "1", Source: "site-controller " + controllerVersion(), Manual: "site-controller manual"}
			if date != "" {
				t, err := time.Parse("2006-01-02", date)
				if err != nil {
					return fmt.Errorf("--date %q: want YYYY-MM-DD: %w", date, err)
				}
				header.Date = &t
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // pages that do not change from build to build
			forManPages(root)
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return fmt.Errorf("writing man pages into %s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&date, "date", "", "date in the pages' footer, YYYY-MM-DD (default: today; the release build passes the commit's date)")
	return cmd
}

// forManPages readies the command tree (of this one-shot process) for
// cobra/doc: its texts are Markdown there, where <data-home> would be an
// HTML tag, and the defaults that depend on who builds the pages say what
// they depend on.
func forManPages(c *cobra.Command) {
	md := strings.NewReplacer("<", `\<`, ">", `\>`)
	c.Short, c.Long, c.Example = md.Replace(c.Short), md.Replace(c.Long), md.Replace(c.Example)
	defaults := map[string]string{
		"data-home":     "/var/lib/skupper for root, else ${XDG_DATA_HOME:-$HOME/.local/share}/skupper",
		"systemd-scope": "system for root, else user",
		"router-image":  runtime.DefaultImage + " (or $SKUPPER_ROUTER_IMAGE)",
	}
	c.Flags().VisitAll(func(f *pflag.Flag) {
		f.Usage = md.Replace(f.Usage)
		if d, ok := defaults[f.Name]; ok {
			f.DefValue = d
		}
	})
	for _, sub := range c.Commands() {
		forManPages(sub)
	}
}
