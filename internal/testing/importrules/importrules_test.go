package importrules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// knownEdges are the imports of one component by another that remain,
// importer component -> imported component. Any other such import fails
// the test, and so does an entry here that no longer occurs (remove it).
var knownEdges = map[string]string{
	// builder/common is the builders' shared package: the answer file and
	// install media, the source image, the guest steps both builders run.
	"builder/qemu -> builder/common":    "the builders' shared package",
	"builder/libvirt -> builder/common": "the builders' shared package",
}

// testInfrastructure are the trees of test-only packages (the stand-in
// guest, test servers, test media, their programs) that the plugin binary
// must not carry: all of them live under internal/testing.
var testInfrastructure = []string{
	"internal/testing",
}

// componentRoots are the directories whose children are components.
var componentRoots = []string{"builder", "provisioner", "post-processor"}

// listedPackage is what the rules need of a `go list -json` entry.
type listedPackage struct {
	ImportPath string
	Imports    []string
}

// TestComponentsImportNoOtherComponent fails naming every import of one
// component by another that is not in knownEdges, and every shared
// package reached from a component that imports a component (which would
// make the components depend on each other through it).
func TestComponentsImportNoOtherComponent(t *testing.T) {
	module := goList(t, "-m")[0].ImportPath
	var patterns []string
	for _, root := range componentRoots {
		patterns = append(patterns, module+"/"+root+"/...")
	}
	pkgs := goList(t, append([]string{"-deps"}, patterns...)...)
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages under " + strings.Join(patterns, " "))
	}
	offending, unused := checkImports(module, pkgs, knownEdges)
	for _, e := range offending {
		t.Errorf("forbidden import %s: share the contract through a leaf package under internal/ instead", e)
	}
	for _, e := range unused {
		t.Errorf("known edge %q no longer occurs: remove it from knownEdges", e)
	}
}

// TestPluginCarriesNoTestInfrastructure fails naming every test
// infrastructure package the plugin binary depends on.
func TestPluginCarriesNoTestInfrastructure(t *testing.T) {
	module := goList(t, "-m")[0].ImportPath
	deps := goList(t, "-deps", module)
	if !slices.ContainsFunc(deps, func(p listedPackage) bool { return p.ImportPath == module+"/builder/qemu" }) {
		t.Fatalf("go list -deps %s does not list builder/qemu: not the plugin binary's dependencies", module)
	}
	for _, bad := range testInfrastructureIn(module, deps) {
		t.Errorf("the plugin binary depends on the test infrastructure package %s", bad)
	}
}

// The rules find a new edge, an edge through a shared package, a stale
// known edge and test infrastructure in a made-up graph, and pass a
// component's own subpackages.
func TestRulesReportViolations(t *testing.T) {
	const m = "example.com/plugin"
	pkgs := []listedPackage{
		{ImportPath: m + "/builder/qemu", Imports: []string{m + "/builder/common", m + "/internal/image", "fmt"}},
		{ImportPath: m + "/builder/common", Imports: []string{m + "/provisioner/updates"}},
		{ImportPath: m + "/post-processor/compress/bench", Imports: []string{m + "/post-processor/compress"}},
		{ImportPath: m + "/post-processor/glance", Imports: []string{m + "/internal/shared"}},
		{ImportPath: m + "/internal/shared", Imports: []string{m + "/post-processor/sysprep"}},
		{ImportPath: m + "/internal/testing/testguest/winsim", Imports: []string{m + "/internal/agent"}},
		{ImportPath: m + "/internal/testing/mediatest"},
		{ImportPath: m + "/internal/installmedia"},
	}
	known := map[string]string{
		"builder/qemu -> builder/common":          "",
		"post-processor/verify -> builder/common": "",
	}
	offending, unused := checkImports(m, pkgs, known)
	wantOffending := []string{
		"builder/common -> provisioner/updates",
		"internal/shared -> post-processor/sysprep (a shared package reached from a component)",
	}
	if !slices.Equal(offending, wantOffending) {
		t.Errorf("offending edges %q, want %q", offending, wantOffending)
	}
	if want := []string{"post-processor/verify -> builder/common"}; !slices.Equal(unused, want) {
		t.Errorf("unused known edges %q, want %q", unused, want)
	}
	wantInfra := []string{m + "/internal/testing/mediatest", m + "/internal/testing/testguest/winsim"}
	if got := testInfrastructureIn(m, pkgs); !slices.Equal(got, wantInfra) {
		t.Errorf("test infrastructure %q, want %q", got, wantInfra)
	}
}

// component returns the component a package belongs to ("builder/qemu"
// for builder/qemu and its subpackages), "" for other packages.
func component(module, path string) string {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	parts := strings.SplitN(rel, "/", 3)
	if len(parts) < 2 || !slices.Contains(componentRoots, parts[0]) {
		return ""
	}
	return parts[0] + "/" + parts[1]
}

// checkImports returns the forbidden edges among pkgs (an import of a
// component by another component not in known, or by a package of the
// module that is no component) and the known edges that do not occur,
// both sorted.
func checkImports(module string, pkgs []listedPackage, known map[string]string) (offending, unused []string) {
	seen := map[string]bool{}
	for _, p := range pkgs {
		rel, inModule := strings.CutPrefix(p.ImportPath, module+"/")
		if !inModule {
			continue
		}
		from := component(module, p.ImportPath)
		for _, imp := range p.Imports {
			to := component(module, imp)
			if to == "" || to == from {
				continue
			}
			if from == "" {
				offending = append(offending, rel+" -> "+to+" (a shared package reached from a component)")
				continue
			}
			edge := from + " -> " + to
			if _, ok := known[edge]; ok {
				seen[edge] = true
				continue
			}
			offending = append(offending, edge)
		}
	}
	for edge := range known {
		if !seen[edge] {
			unused = append(unused, edge)
		}
	}
	slices.Sort(offending)
	slices.Sort(unused)
	return slices.Compact(offending), unused
}

// testInfrastructureIn returns the packages of pkgs under
// testInfrastructure, sorted.
func testInfrastructureIn(module string, pkgs []listedPackage) []string {
	var found []string
	for _, p := range pkgs {
		for _, dir := range testInfrastructure {
			if root := module + "/" + dir; p.ImportPath == root || strings.HasPrefix(p.ImportPath, root+"/") {
				found = append(found, p.ImportPath)
			}
		}
	}
	slices.Sort(found)
	return found
}

// goList runs `go list -json` with args and decodes its packages (or, with
// -m, its modules, whose Path is put in ImportPath).
func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list -json %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var out []listedPackage
	dec := json.NewDecoder(&stdout)
	for {
		var p struct {
			listedPackage
			Path string // go list -m
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list -json %s: %v", strings.Join(args, " "), err)
		}
		if p.ImportPath == "" {
			p.ImportPath = p.Path
		}
		out = append(out, p.listedPackage)
	}
	return out
}
