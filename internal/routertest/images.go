package routertest

import (
	"bytes"
	"context"
	"testing"

	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// standinChanges make the imported root file system run the stand-in.
var standinChanges = []string{`ENTRYPOINT ["/standin"]`}

// ImportDocker imports the stand-in router image into a Docker engine
// unless it is there.
func ImportDocker(t testing.TB, cli *client.Client) {
	t.Helper()
	ctx := context.Background()
	if _, err := cli.ImageInspect(ctx, StandinImage); err == nil {
		return
	}
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(StandinRootfs(t)), SourceName: "-"},
		StandinImage, image.ImportOptions{Changes: standinChanges})
	if err != nil {
		t.Fatalf("importing the stand-in image into docker: %v", err)
	}
	rc.Close()
}

// ImportPodman imports the stand-in router image into a Podman service
// (conn is a bindings connection context) unless it is there.
func ImportPodman(t testing.TB, conn context.Context) {
	t.Helper()
	if ok, _ := images.Exists(conn, StandinImage, nil); ok {
		return
	}
	changes, ref := standinChanges, StandinImage
	if _, err := images.Import(conn, bytes.NewReader(StandinRootfs(t)), &images.ImportOptions{Changes: &changes, Reference: &ref}); err != nil {
		t.Fatalf("importing the stand-in image into podman: %v", err)
	}
}
