package routertest

import (
	"bytes"
	"context"
	"testing"

	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// BackendImage is the stand-in workload (internal/backend) the selector
// tests start labelled containers of: not a router, a server that answers
// with its name.
const BackendImage = "localhost/site-controller-backend:test"

// stand-in images: the command each holds, and how it runs
var imageCommand = map[string]string{StandinImage: "standin", BackendImage: "backend"}

func changesOf(ref string) []string {
	return []string{`ENTRYPOINT ["/` + imageCommand[ref] + `"]`}
}

// ImportDocker imports the stand-in router image into a Docker engine
// unless it is there.
func ImportDocker(t testing.TB, cli *client.Client) { ImportDockerImage(t, cli, StandinImage) }

// ImportDockerImage imports stand-in image ref (StandinImage,
// BackendImage) into a Docker engine unless it is there.
func ImportDockerImage(t testing.TB, cli *client.Client, ref string) {
	t.Helper()
	ctx := context.Background()
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return
	}
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs(t, imageCommand[ref])), SourceName: "-"},
		ref, image.ImportOptions{Changes: changesOf(ref)})
	if err != nil {
		t.Fatalf("importing %s into docker: %v", ref, err)
	}
	rc.Close()
}

// ImportPodman imports the stand-in router image into a Podman service
// (conn is a bindings connection context) unless it is there.
func ImportPodman(t testing.TB, conn context.Context) { ImportPodmanImage(t, conn, StandinImage) }

// ImportPodmanImage imports stand-in image ref into a Podman service
// unless it is there.
func ImportPodmanImage(t testing.TB, conn context.Context, ref string) {
	t.Helper()
	if ok, _ := images.Exists(conn, ref, nil); ok {
		return
	}
	changes := changesOf(ref)
	if _, err := images.Import(conn, bytes.NewReader(rootfs(t, imageCommand[ref])), &images.ImportOptions{Changes: &changes, Reference: &ref}); err != nil {
		t.Fatalf("importing %s into podman: %v", ref, err)
	}
}
