package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/site"
)

func newLinkCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "link",
		Short: "Link sites: print the link file another site needs to link to this one",
	}
	cmd.AddCommand(newLinkGenerateCommand())
	return cmd
}

func newLinkGenerateCommand() *cobra.Command {
	var dataHome, host, access string
	cmd := &cobra.Command{
		Use:   "generate NAMESPACE",
		Short: "Print a link file: a Secret and a Link that let another site link to this one",
		Long: "Print the link file of a RouterAccess of NAMESPACE (the only one, or --router-access) for one\n" +
			"of the hosts its certificate names (the first, or --host): a Secret with a client certificate\n" +
			"and a Link with the endpoints. Put it in the other site's input/resources (as a file: it holds\n" +
			"a private key). The files are kept in runtime/links by the daemon (or render); Skupper's own\n" +
			"non-Kubernetes sites read them as they are.",
		Args: withUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := existingNamespace(dataHome, args[0])
			if err != nil {
				return err
			}
			rs, err := readStatuses(dataHome, dir.Name)
			if err != nil {
				return err
			}
			// the RouterAccesses, with their hosts in the order the
			// controller prefers them
			hosts := map[string][]string{}
			var accesses []string
			for _, r := range rs {
				if r.Kind != resources.KindRouterAccess || r.Name == "skupper-local" || r.Error != "" {
					continue
				}
				accesses = append(accesses, r.Name)
				for _, e := range r.Endpoints {
					if !slices.Contains(hosts[r.Name], e.Host) {
						hosts[r.Name] = append(hosts[r.Name], e.Host)
					}
				}
			}
			switch {
			case access == "" && len(accesses) == 1:
				access = accesses[0]
			case access == "" && len(accesses) == 0:
				return fmt.Errorf("namespace %s accepts no links: give its Site linkAccess: default, or add a RouterAccess (and let the daemon or render run)", dir.Name)
			case access == "":
				return fmt.Errorf("namespace %s has several RouterAccesses (%s): choose one with --router-access", dir.Name, strings.Join(accesses, ", "))
			case !slices.Contains(accesses, access):
				return fmt.Errorf("namespace %s has no RouterAccess %q (it has %s)", dir.Name, access, strings.Join(accesses, ", "))
			}
			if len(hosts[access]) == 0 {
				return fmt.Errorf("RouterAccess %s has no endpoints yet: see site-controller status %s", access, dir.Name)
			}
			switch {
			case host == "":
				host = hosts[access][0]
			case !slices.Contains(hosts[access], host):
				return fmt.Errorf("the certificate of RouterAccess %s does not name %q; it names %s (add the host to spec.subjectAlternativeNames)", access, host, strings.Join(hosts[access], ", "))
			}
			file := dir.LinkFile(access, host)
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("reading the link file: %w (is the daemon running? site-controller render writes it too)", err)
			}
			// never a file with a certificate of the site's internal CAs
			// (one left by an older version, or put there by hand)
			internal, err := site.LoadInternalCAs(dir)
			if err == nil {
				err = internal.RefuseLinkFile(data)
			}
			if err != nil {
				return fmt.Errorf("%s: %w (let the daemon or render write the link files again)", file, err)
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	dataHomeFlag(cmd, &dataHome)
	cmd.Flags().StringVar(&host, "host", "", "the host the other site reaches this one at (default: the first the certificate names)")
	cmd.Flags().StringVar(&access, "router-access", "", "the RouterAccess to link to (default: the only one)")
	return cmd
}
