package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/status"
)

func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Link sites by token: issue an AccessToken here, redeem one from elsewhere",
	}
	cmd.AddCommand(newTokenIssueCommand(), newTokenRedeemCommand())
	return cmd
}

// tokenDoc is an AccessToken as `token issue` writes it.
type tokenDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		URL  string `yaml:"url"`
		Code string `yaml:"code"`
		CA   string `yaml:"ca"`
	} `yaml:"spec"`
}

func newTokenIssueCommand() *cobra.Command {
	var dataHome string
	var redemptions int
	var expiry, wait time.Duration
	cmd := &cobra.Command{
		Use:   "issue NAMESPACE FILE",
		Short: "Write an AccessGrant into NAMESPACE's input and, once the daemon serves it, its AccessToken into FILE",
		Long: "Like `skupper token issue`: an AccessGrant named token-<random> goes into the namespace's\n" +
			"input/resources; when the daemon (run --grant-server) serves it, the AccessToken that redeems\n" +
			"it is written to FILE (0600: the code grants a link). Give FILE to the other site's\n" +
			"`site-controller token redeem` (or `skupper token redeem`).",
		Args: withUsage(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := existingNamespace(dataHome, args[0])
			if err != nil {
				return err
			}
			id := make([]byte, 4)
			rand.Read(id)
			name := "token-" + hex.EncodeToString(id)
			grant := fmt.Sprintf("apiVersion: %s\nkind: AccessGrant\nmetadata:\n  name: %s\nspec:\n  redemptionsAllowed: %d\n  expirationWindow: %s\n",
				resources.APIVersion, name, redemptions, expiry)
			path := filepath.Join(dir.InputResources(), "AccessGrant-"+name+".yaml")
			if _, err := fileio.WriteFile(path, []byte(grant), 0o644, 0o755, false); err != nil {
				return err
			}
			statusFile := filepath.Join(dir.RuntimeResources(), status.FileName(resources.KindAccessGrant, name))
			deadline := time.Now().Add(wait)
			for {
				st, err := status.Read(statusFile)
				switch {
				case err == nil && st.Status == status.Ready && st.URL != "":
					var t tokenDoc
					t.APIVersion, t.Kind, t.Metadata.Name = resources.APIVersion, resources.KindAccessToken, name
					t.Spec.URL, t.Spec.Code, t.Spec.CA = st.URL, st.Code, st.CA
					var b bytes.Buffer
					enc := yaml.NewEncoder(&b)
					enc.SetIndent(2)
					if err := enc.Encode(t); err != nil {
						return err
					}
					if _, err := fileio.WriteFile(args[1], b.Bytes(), 0o600, 0o700, false); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "AccessGrant %s (%s) serves the token in %s: %d redemption(s), until %s\n", name, path, args[1], max(redemptions, 1), st.ExpirationTime)
					return nil
				case err == nil && st.Status == status.Error:
					return fmt.Errorf("AccessGrant %s (%s): %s", name, path, st.Message)
				case time.Now().After(deadline):
					return fmt.Errorf("AccessGrant %s (%s) was not served within %s: is the daemon running (with --grant-server)?", name, path, wait)
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
	}
	dataHomeFlag(cmd, &dataHome)
	cmd.Flags().IntVar(&redemptions, "redemptions", 1, "how many times the token can be redeemed")
	cmd.Flags().DurationVar(&expiry, "expiry", 15*time.Minute, "how long the token can be redeemed")
	cmd.Flags().DurationVar(&wait, "timeout", 30*time.Second, "how long to wait for the daemon to serve the grant")
	return cmd
}

func newTokenRedeemCommand() *cobra.Command {
	var dataHome string
	cmd := &cobra.Command{
		Use:   "redeem NAMESPACE FILE",
		Short: "Put the AccessToken in FILE into NAMESPACE's input: the daemon redeems it for a link",
		Args:  withUsage(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := existingNamespace(dataHome, args[0])
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			docs, probs := resources.Decode(args[1], data)
			if len(probs) > 0 {
				return fmt.Errorf("%s", probs[0].String())
			}
			if len(docs) != 1 || docs[0].Kind != resources.KindAccessToken {
				return fmt.Errorf("%s: expected one AccessToken", args[1])
			}
			path := filepath.Join(dir.InputResources(), "AccessToken-"+docs[0].Name+".yaml")
			if old, err := os.ReadFile(path); err == nil && !bytes.Equal(old, data) {
				return fmt.Errorf("%s exists with another token: remove it first", path)
			}
			if _, err := fileio.WriteFile(path, data, 0o600, 0o755, false); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: the daemon redeems it; see site-controller status %s\n", path, dir.Name)
			return nil
		},
	}
	dataHomeFlag(cmd, &dataHome)
	return cmd
}
