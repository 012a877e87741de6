package commands

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// devVersion is what a build reports that knows no better.
const devVersion = "dev"

// BuildVersion is the version the binary reports: set, as a release build
// sets it (-ldflags "-X main.version=v1.2.3"), unless it is empty or
// "dev"; else what the Go toolchain recorded in the build info (see
// versionOf), so that a plain go build or go install says which code it is.
func BuildVersion(set string) string {
	if set != "" && set != devVersion {
		return set
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return devVersion
	}
	return versionOf(info)
}

// versionOf reads a version from build info: the main module's version
// (a tag, or a pseudo-version, for go install m@v and builds in a VCS
// checkout), unless it is "(devel)"; else the VCS revision, shortened,
// with "-dirty" when the work tree had changes; else "dev".
func versionOf(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return devVersion
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version (as --version does), then the Go version and the OS/architecture it was built for",
		Action: func(c *cli.Context) error {
			if _, err := args(c); err != nil {
				return err
			}
			_, err := fmt.Fprintf(c.App.Writer, "%s version %s\n%s %s/%s\n", c.App.Name, c.App.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
