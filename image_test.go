package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestImage builds the container image with scripts/image.sh (buildah, no
// Docker engine) and lets the script's checks decide: non-root user, port
// 8080, the health check, the binary runs from the image. It takes seconds
// with a warm build cache, and needs root and buildah, so it only runs
// when asked: FLASHSALE_TEST_IMAGE=1 go test -run TestImage .
func TestImage(t *testing.T) {
	if os.Getenv("FLASHSALE_TEST_IMAGE") != "1" {
		t.Skip("set FLASHSALE_TEST_IMAGE=1 to build and check the image with scripts/image.sh")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Skip("buildah is not installed (apt-get install buildah)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t.Cleanup(func() { exec.Command("buildah", "--storage-driver", "vfs", "rmi", "localhost/flashsale:test").Run() })
	start := time.Now()
	out, err := exec.CommandContext(ctx, "bash", "scripts/image.sh", "flashsale:test").CombinedOutput()
	t.Logf("scripts/image.sh flashsale:test (%s):\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("scripts/image.sh: %v", err)
	}
}
