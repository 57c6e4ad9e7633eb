package readme_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestLinks checks that every relative link of README.md and docs/*.md
// leads to a file of the repository and, into Markdown, to a heading.
func TestLinks(t *testing.T) {
	files := []string{"README.md"}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		files = append(files, filepath.Join("docs", filepath.Base(d)))
	}
	for _, file := range files {
		for i, line := range prose(readFile(t, file)) {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, anchor, _ := strings.Cut(target, "#")
				rel := file
				if path != "" {
					rel = filepath.Join(filepath.Dir(file), path)
				}
				if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
					t.Errorf("%s:%d: link %s: no %s", file, i+1, target, rel)
					continue
				}
				if anchor != "" && strings.HasSuffix(rel, ".md") && !anchors(readFile(t, rel))[anchor] {
					t.Errorf("%s:%d: link %s: %s has no heading #%s", file, i+1, target, rel, anchor)
				}
			}
		}
	}
}

// TestLayout checks that docs/layout.md names every folder that holds Go
// code, and only folders that exist.
func TestLayout(t *testing.T) {
	var rows []string
	for _, table := range tables(readFile(t, "docs/layout.md")) {
		for _, row := range table[1:] {
			spans := codeSpans(row[0])
			if len(spans) != 1 {
				t.Errorf("docs/layout.md: row %q should name one folder", row[0])
				continue
			}
			rows = append(rows, spans[0])
		}
	}
	for _, r := range rows {
		if _, err := os.Stat(filepath.Join(root, strings.TrimSuffix(r, "/*"))); err != nil {
			t.Errorf("docs/layout.md names %s, which does not exist", r)
		}
	}
	var missing []string
	for _, dir := range goFolders(t) {
		covered := false
		for _, r := range rows {
			prefix, wild := strings.CutSuffix(r, "/*")
			covered = covered || r == dir || wild && strings.HasPrefix(dir, prefix+"/")
		}
		if !covered {
			missing = append(missing, dir)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/layout.md does not name these folders of Go code: %s", strings.Join(missing, ", "))
	}
}

// goFolders are the folders of the repository that hold .go files,
// leaving out testdata, node_modules and hidden folders, as go ./... does.
func goFolders(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (name == "testdata" || name == "node_modules" ||
			strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			if rel != "." {
				seen[filepath.ToSlash(rel)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for dir := range seen {
		out = append(out, dir)
	}
	sort.Strings(out)
	return out
}
