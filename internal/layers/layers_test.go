// Package layers holds a test of the packages' layering: who may import
// whom among ours, so that a shortcut across layers fails in make test
// rather than in review.
package layers

import (
	"go/build"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/eventsource/eventsource/"

// allowed lists, for each package, the only packages of ours it may import
// (tests aside).
var allowed = map[string][]string{
	"ordjson":     {},
	"frontier":    {},
	"messages":    {"ordjson"},
	"sqlbuild":    {"ordjson"},
	"cursor":      {"messages", "sqlbuild"},
	"supervision": {"messages"},
	"actors":      {"cursor", "messages", "metrics", "sqlbuild", "supervision"},
	"gateway":     {"cursor", "gateway/web", "messages", "metrics", "ordjson", "sqlbuild", "supervision"},
	"mysqlstore":  {"cursor", "internal/tlsfiles", "messages", "ordjson", "sqlbuild"},
	"redisbus":    {"messages"},
	"client":      {"messages", "ordjson", "redisbus"},
}

func TestLayering(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	for pkg, may := range allowed {
		t.Run(pkg, func(t *testing.T) {
			p, err := build.ImportDir(filepath.Join(root, pkg), 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range p.Imports {
				ours, ok := strings.CutPrefix(imp, module)
				if ok && !slices.Contains(may, ours) {
					t.Errorf("%s imports %s; it may import only %v of ours", pkg, ours, may)
				}
			}
		})
	}
}
