// Package docs holds the documentation pages of party (the *.md files here)
// and the test that keeps their code true: every Go block of README.md and
// docs/*.md is a complete, gofmt-clean file that compiles and passes vet
// against this checkout, and every JavaScript block parses.
package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// block is one fenced code block of a Markdown file.
type block struct {
	file string
	line int // of the opening fence
	lang string
	code string
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// blocks returns the fenced code blocks of the Markdown files.
func blocks(t *testing.T, files []string) []block {
	t.Helper()
	var out []block
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cur *block
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case cur == nil && strings.HasPrefix(line, "```"):
				cur = &block{file: f, line: n, lang: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			case cur != nil && line == "```":
				out = append(out, *cur)
				cur = nil
			case cur != nil:
				cur.code += line + "\n"
			}
		}
		if cur != nil {
			t.Fatalf("%s: the block opened there is never closed", cur)
		}
	}
	return out
}

func markdownFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"../README.md"}, files...)
}

// TestGoBlocks compiles and vets every Go block, each as a package of its
// own in a module that requires this checkout.
func TestGoBlocks(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	gomod := "module docscheck\n\ngo 1.23\n\nrequire party v0.0.0\n\nreplace party => " + root + "\n"
	write(t, filepath.Join(mod, "go.mod"), gomod)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(mod, "go.sum"), string(sum))

	where := map[string]block{} // package directory -> its block
	for i, b := range blocks(t, markdownFiles(t)) {
		if b.lang != "go" {
			continue
		}
		if !strings.HasPrefix(b.code, "package ") && !strings.Contains(b.code, "\npackage ") {
			t.Errorf("%s: a Go block must be a complete file (package clause, imports), so that it can be compiled", b)
			continue
		}
		if formatted, err := format.Source([]byte(b.code)); err != nil {
			t.Errorf("%s: does not parse: %v", b, err)
			continue
		} else if string(formatted) != b.code {
			t.Errorf("%s: not gofmt-clean; gofmt gives:\n%s", b, formatted)
		}
		dir := fmt.Sprintf("b%02d", i)
		write(t, filepath.Join(mod, dir, "main.go"), b.code)
		where[dir] = b
	}
	if len(where) == 0 {
		t.Fatal("no Go blocks found: the Markdown files moved?")
	}
	cmd := exec.Command(goTool(), "vet", "./...")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := string(out)
		for dir, b := range where { // name the Markdown line, not the temporary file
			msg = strings.ReplaceAll(msg, dir+"/main.go", b.String()+" (block)")
		}
		t.Errorf("go vet of the Go blocks: %v\n%s", err, msg)
	}
}

// TestJavaScriptBlocks checks that every JavaScript block parses as an ES
// module (node --check). The interop suite runs the behaviour they show.
func TestJavaScriptBlocks(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: the JavaScript blocks are not checked here (CI installs it)")
	}
	dir := t.TempDir()
	for i, b := range blocks(t, markdownFiles(t)) {
		if b.lang != "js" {
			continue
		}
		f := filepath.Join(dir, fmt.Sprintf("b%02d.mjs", i))
		// Blocks may use names defined in the text around them (host,
		// room, getToken): declared here so that only syntax is checked.
		write(t, f, "let host, room, getToken, PartySocketStub;\n"+b.code)
		if out, err := exec.Command(node, "--check", f).CombinedOutput(); err != nil {
			t.Errorf("%s: node --check: %v\n%s", b, err, out)
		}
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
