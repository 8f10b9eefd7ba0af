package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/site-controller/site-controller/pkg/console"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/daemon"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/namespace"
)

func newRunCommand() *cobra.Command {
	var (
		dataHome, platform, httpAddr, httpAuth, logFormat, logLevel string
		grantAddr, grantHost, routerUpgrade                         string
		quiet, rescan, fullPass                                     time.Duration
		maxFileSize                                                 int64
		rf                                                          runtimeFlags
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the controller: keep every namespace's runtime/ in sync with its input/",
		Long: "Watch <data-home>/namespaces and reconcile each namespace whenever its input changes.\n" +
			"SIGHUP forces a full resync; SIGTERM stops the controller (routers keep running).\n" +
			"Under systemd (Type=notify) it reports READY=1, STATUS=, RELOADING=1 and WATCHDOG=1.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return err
			}
			var users *console.Users
			if httpAuth != "" {
				if httpAddr == "" {
					return errors.New("--http-auth needs --http")
				}
				if users, err = console.ReadUsers(httpAuth); err != nil {
					return err
				}
			}
			if httpAddr != "" {
				// refused before anything starts
				if _, err := console.Handler(httpAddr, users, http.NotFoundHandler()); err != nil {
					return err
				}
			}
			if routerUpgrade != "auto" && routerUpgrade != "manual" {
				return fmt.Errorf("--router-upgrade must be auto or manual, got %q", routerUpgrade)
			}
			runtimes, chosen, err := rf.build(cmd.Context(), platform, log)
			if err != nil {
				return err
			}
			opts := daemon.Options{
				Options: controller.Options{DataHome: dataHome, Platform: chosen, Runtimes: runtimes, Live: true, Version: controllerVersion(), MaxFileSize: maxFileSize, RouterUpgrade: routerUpgrade},
				Quiet:   quiet, Rescan: disabledIfZero(rescan), FullPass: disabledIfZero(fullPass), Log: log,
				Notify: func(state string) { _, _ = sddaemon.SdNotify(false, state) },
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if grantAddr != "" {
				srv, err := grants.New(grants.Options{Addr: grantAddr, Host: grantHost, Dir: filepath.Join(dataHome, "grant-server"), Log: log.With("component", "grant-server")})
				if err != nil {
					return err
				}
				opts.Grants = srv
				served := make(chan struct{})
				defer func() { stop(); <-served }()
				go func() {
					defer close(served)
					if err := srv.Serve(ctx); err != nil {
						log.Error("grant server stopped", "err", err)
					}
				}()
				log.Info("grant server listening", "addr", srv.Addr(), "url", srv.URL("<grant>"))
			}
			if iv, err := sddaemon.SdWatchdogEnabled(false); err == nil && iv > 0 {
				opts.Watchdog = iv / 2
			}
			d, err := daemon.New(opts)
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						d.Reload()
					}
				}
			}()
			if httpAddr != "" {
				srv, err := console.Serve(httpAddr, users, d.Handler(), log)
				if err != nil {
					return err
				}
				defer srv.Shutdown(context.Background())
			}
			log.Info("site-controller starting", "version", controllerVersion(), "data_home", dataHome, "platform", platform)
			err = d.Run(ctx)
			log.Info("site-controller stopped")
			return err
		},
	}
	dataHomeFlag(cmd, &dataHome)
	cmd.Flags().StringVar(&platform, "platform", "auto", "platform of namespaces without internal/platform.yaml: auto, podman, docker, linux or none (render and write status only)")
	rf.register(cmd)
	cmd.Flags().StringVar(&httpAddr, "http", "", "address of the console (/), its API (/api/), /healthz, /readyz and /metrics, e.g. 127.0.0.1:9090; "+
		"a non-loopback address needs --http-auth")
	cmd.Flags().StringVar(&httpAuth, "http-auth", "", "htpasswd file of bcrypt hashes (htpasswd -B): --http asks for one of its users and passwords (HTTP basic authentication; /healthz and /readyz stay open)")
	cmd.Flags().StringVar(&grantAddr, "grant-server", "", "serve the namespaces' AccessGrants over HTTPS on this address (host:port), e.g. 0.0.0.0:8081; off when empty")
	cmd.Flags().StringVar(&grantHost, "grant-server-host", "", "the host name other sites reach the grant server at, for grant URLs (default: the --grant-server host unless it is a wildcard, else this host's name)")
	cmd.Flags().StringVar(&routerUpgrade, "router-upgrade", "auto", "when a router runs another router image than --router-image names now: auto restarts routers one namespace at a time, each after the previous serves again; manual leaves them running (their Site status says an upgrade is pending)")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "text or json")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().Int64Var(&maxFileSize, "max-file-size", namespace.MaxFileSize, "largest resource file read, in bytes; a larger one is a problem of that file")
	cmd.Flags().DurationVar(&quiet, "quiet-period", 5*time.Millisecond, "how long a namespace must be quiet before it is reconciled")
	cmd.Flags().DurationVar(&rescan, "rescan-interval", 30*time.Second, "periodic full rescan by content hash (0 disables)")
	cmd.Flags().DurationVar(&fullPass, "full-pass-interval", 10*time.Minute,
		"how often every namespace gets a pass that reads and writes everything again, trusting nothing kept from earlier passes (0 disables)")
	return cmd
}

func newLogger(w interface{ Write([]byte) (int, error) }, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, got %q", format)
}

// disabledIfZero maps a flag's 0 ("disabled") to the daemon's negative
// value for it (its 0 means "the default").
func disabledIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
