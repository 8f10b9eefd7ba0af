package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/enginetest"
)

// TestAutoPlatformFromEngineVariables: with --platform auto, DOCKER_HOST
// pointing at the test dockerd picks Docker, CONTAINER_HOST pointing at
// the test Podman service picks Podman (before DOCKER_HOST when both are
// set), and the chosen runtime really talks to that engine; the log says
// which variable named it.
func TestAutoPlatformFromEngineVariables(t *testing.T) {
	dockerEP, podmanEP := enginetest.DockerEndpoint(t), enginetest.PodmanEndpoint(t)
	for _, tc := range []struct {
		name             string
		env              map[string]string
		platform, reason string
	}{
		{"DOCKER_HOST", map[string]string{"DOCKER_HOST": dockerEP}, "docker", "named by DOCKER_HOST"},
		{"CONTAINER_HOST", map[string]string{"CONTAINER_HOST": podmanEP}, "podman", "named by CONTAINER_HOST"},
		{"CONTAINER_HOST before DOCKER_HOST", map[string]string{"CONTAINER_HOST": podmanEP, "DOCKER_HOST": dockerEP}, "podman", "named by CONTAINER_HOST"},
		{"CONTAINER_ENDPOINT before both", map[string]string{"CONTAINER_ENDPOINT": dockerEP, "CONTAINER_HOST": podmanEP, "DOCKER_HOST": podmanEP}, "docker", "named by CONTAINER_ENDPOINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"CONTAINER_ENDPOINT", "CONTAINER_HOST", "DOCKER_HOST"} {
				t.Setenv(name, tc.env[name])
			}
			var log bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var rf runtimeFlags
			rf.pull, rf.scope = "never", "user"
			runtimes, chosen, err := rf.build(ctx, "auto", slog.New(slog.NewTextHandler(&log, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if chosen != tc.platform || !strings.Contains(log.String(), tc.reason) {
				t.Errorf("platform %s, want %s; log:\n%s", chosen, tc.platform, log.String())
			}
			if _, err := runtimes[chosen].List(ctx); err != nil {
				t.Errorf("the %s runtime does not reach its engine: %v", chosen, err)
			}
		})
	}
	t.Run("a variable naming a socket nothing answers on", func(t *testing.T) {
		t.Setenv("CONTAINER_ENDPOINT", "")
		t.Setenv("CONTAINER_HOST", "")
		t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/docker.sock")
		var rf runtimeFlags
		rf.pull, rf.scope = "never", "user"
		_, _, err := rf.build(context.Background(), "auto", slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "DOCKER_HOST names") {
			t.Errorf("%v, want an error naming DOCKER_HOST", err)
		}
	})
}
