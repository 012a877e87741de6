package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestImage builds the container images with scripts/image.sh (buildah, no
// Docker engine) and lets the script's checks decide: non-root user, port
// 8080, the health check, the files in the image, the binary runs from it.
// From source needs the golang base image (pulled, or in buildah's store:
// the subtest skips, saying so, when it is neither); the release image
// needs nothing but Go. Both need root and buildah, so they only run when
// asked: FLASHSALE_TEST_IMAGE=1 go test -run TestImage .
func TestImage(t *testing.T) {
	if os.Getenv("FLASHSALE_TEST_IMAGE") != "1" {
		t.Skip("set FLASHSALE_TEST_IMAGE=1 to build and check the image with scripts/image.sh")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Skip("buildah is not installed (apt-get install buildah)")
	}
	for _, tt := range []struct{ name, flag string }{{"from source", ""}, {"release", "--release"}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			t.Cleanup(func() { exec.Command("buildah", "--storage-driver", "vfs", "rmi", "localhost/flashsale:test").Run() })
			args := slices.DeleteFunc([]string{"scripts/image.sh", tt.flag, "flashsale:test"}, func(s string) bool { return s == "" })
			start := time.Now()
			out, err := exec.CommandContext(ctx, "bash", args...).CombinedOutput()
			t.Logf("%s (%s):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Second), out)
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == 3 {
				t.Skip("no golang base image to build from source on (see the script's message); TestDockerfile checks the Dockerfile's structure")
			}
			if err != nil {
				t.Fatalf("%s: %v", strings.Join(args, " "), err)
			}
		})
	}
}

// instructions reads a Dockerfile: one string an instruction, its
// continuation lines joined, comments and blank lines left out.
func instructions(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		more := strings.HasSuffix(line, `\`)
		cur.WriteString(strings.TrimSpace(strings.TrimSuffix(line, `\`)))
		if more {
			cur.WriteByte(' ')
			continue
		}
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// finalStage is the instructions after the last FROM.
func finalStage(ins []string) (from string, rest []string) {
	for i := len(ins) - 1; i >= 0; i-- {
		if strings.HasPrefix(ins[i], "FROM ") {
			return ins[i], ins[i+1:]
		}
	}
	return "", ins
}

// fromUser is what an image's config is made of: the instructions from
// USER on, the same in both Dockerfiles.
func fromUser(t *testing.T, stage []string) []string {
	t.Helper()
	i := slices.IndexFunc(stage, func(s string) bool { return strings.HasPrefix(s, "USER ") })
	if i < 0 {
		t.Fatalf("no USER in %q", stage)
	}
	return stage[i:]
}

// TestDockerfile checks, without building, what a plain `docker build .`
// and goreleaser each need: the repository's Dockerfile compiles from
// source in a golang stage (static, trimmed, stripped) onto scratch;
// Dockerfile.release, which goreleaser points at, copies its staged
// binary; both images are configured the same; compose.yaml builds the
// Dockerfile.
func TestDockerfile(t *testing.T) {
	src := instructions(t, "Dockerfile")
	if !slices.ContainsFunc(src, regexp.MustCompile(`^FROM docker.io/library/golang:\S+ AS build$`).MatchString) {
		t.Errorf("Dockerfile has no golang build stage: %q", src)
	}
	build := regexp.MustCompile(`^RUN CGO_ENABLED=0 go build -trimpath .*-ldflags "-s -w -X main.version=\$\{VERSION\}"`)
	if !slices.ContainsFunc(src, build.MatchString) {
		t.Errorf("Dockerfile does not build a static, trimmed, stripped binary (want a RUN matching %s): %q", build, src)
	}
	from, final := finalStage(src)
	if from != "FROM scratch" || !slices.Contains(final, "COPY --from=build /rootfs/ /") {
		t.Errorf("Dockerfile's final stage = %s %q, want FROM scratch copying the build stage's /rootfs/", from, final)
	}
	if slices.ContainsFunc(src, func(s string) bool { return strings.Contains(s, "TARGETPLATFORM") }) {
		t.Error("Dockerfile copies a pre-staged binary: a plain build of the repository must compile")
	}
	for _, want := range []string{`USER 65532:65532`, `EXPOSE 8080`, `ENTRYPOINT ["/flashsale"]`, `CMD ["serve"]`,
		`HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/flashsale", "ping", "--addr", "127.0.0.1:8080"]`} {
		if !slices.Contains(final, want) {
			t.Errorf("Dockerfile's final stage lacks %s", want)
		}
	}

	relFrom, rel := finalStage(instructions(t, "Dockerfile.release"))
	if relFrom != "FROM scratch" || !slices.Contains(rel, "COPY ${TARGETPLATFORM}/flashsale /flashsale") {
		t.Errorf("Dockerfile.release = %s %q, want FROM scratch copying goreleaser's ${TARGETPLATFORM}/flashsale", relFrom, rel)
	}
	if a, b := fromUser(t, final), fromUser(t, rel); !slices.Equal(a, b) {
		t.Errorf("the images' configurations differ:\nDockerfile:         %q\nDockerfile.release: %q", a, b)
	}

	for _, tt := range []struct {
		file string
		want *regexp.Regexp
	}{
		{".goreleaser.yaml", regexp.MustCompile(`(?m)^\s+dockerfile: Dockerfile\.release$`)},
		{"compose.yaml", regexp.MustCompile(`(?m)^  flashsale:\n(    .*\n)*    build:\n      context: \.\n`)},
		{".dockerignore", regexp.MustCompile(`(?m)^\.git$`)},
	} {
		b, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		if !tt.want.Match(b) {
			t.Errorf("%s does not match %s", tt.file, tt.want)
		}
	}
}
