// Package skschema checks a rendered router configuration against the
// skupper-router management schema (skrouter.json) that the project keeps
// in ../shared/reference beside the repository. Tests use it on every
// configuration they render.
package skschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/site-controller/site-controller/pkg/routerconfig"
)

// RelPath is where the schema lives relative to the directory that holds
// the repository.
const RelPath = "shared/reference/skupper-router-3.5.1/skrouter.json"

// Schema is the part of skrouter.json the check needs.
type Schema struct {
	Prefix      string                `json:"prefix"`
	EntityTypes map[string]entityType `json:"entityTypes"`
}

type entityType struct {
	Extends    string               `json:"extends"`
	Attributes map[string]attribute `json:"attributes"`
}

type attribute struct {
	Type json.RawMessage `json:"type"`
}

// configAliases are the short section names the router's config file
// parser accepts for some entity types.
var configAliases = map[string]string{
	"address":   "router.config.address",
	"linkRoute": "router.config.linkRoute",
	"autoLink":  "router.config.autoLink",
}

var (
	once    sync.Once
	loaded  *Schema
	errLoad error
)

// Find returns the path of skrouter.json: $SKROUTER_SCHEMA, or RelPath
// looked up from the working directory's ancestors' parents.
func Find() (string, error) {
	if p := os.Getenv("SKROUTER_SCHEMA"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(filepath.Dir(dir), RelPath)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("skrouter.json not found: expected " + RelPath + " beside the repository, or set SKROUTER_SCHEMA")
		}
		dir = parent
	}
}

// Load reads the schema once.
func Load() (*Schema, error) {
	once.Do(func() {
		var path string
		path, errLoad = Find()
		if errLoad != nil {
			return
		}
		var data []byte
		data, errLoad = os.ReadFile(path)
		if errLoad != nil {
			return
		}
		loaded = &Schema{}
		errLoad = json.Unmarshal(data, loaded)
	})
	return loaded, errLoad
}

// attributes returns every attribute of an entity type, inherited ones
// included.
func (s *Schema) attributes(typ string) (map[string]attribute, bool) {
	et, ok := s.EntityTypes[typ]
	if !ok {
		return nil, false
	}
	out := map[string]attribute{}
	for {
		for k, v := range et.Attributes {
			if _, set := out[k]; !set {
				out[k] = v
			}
		}
		next, ok := s.EntityTypes[et.Extends]
		if et.Extends == "" || !ok {
			break
		}
		et = next
	}
	return out, true
}

// Check returns every way cfg departs from the schema: unknown entity
// types, unknown attributes, values not of the declared type.
func (s *Schema) Check(cfg routerconfig.Config) []error {
	var errs []error
	for i, e := range cfg {
		typ := e.Type
		if a, ok := configAliases[typ]; ok {
			typ = a
		}
		attrs, ok := s.attributes(typ)
		if !ok {
			errs = append(errs, fmt.Errorf("entity %d: unknown entity type %q", i, e.Type))
			continue
		}
		for name, v := range e.Attrs {
			a, ok := attrs[name]
			if !ok {
				errs = append(errs, fmt.Errorf("%s %q: unknown attribute %q", e.Type, e.Name(), name))
				continue
			}
			if err := a.check(v); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: attribute %s: %w", e.Type, e.Name(), name, err))
			}
		}
	}
	return errs
}

func (a attribute) check(v any) error {
	var enum []string
	if json.Unmarshal(a.Type, &enum) == nil {
		s, ok := v.(string)
		if !ok || !slices.Contains(enum, s) {
			return fmt.Errorf("%v is not one of %v", v, enum)
		}
		return nil
	}
	var typ string
	if err := json.Unmarshal(a.Type, &typ); err != nil {
		return fmt.Errorf("schema type %s not understood", a.Type)
	}
	switch typ {
	case "string", "path", "entityId":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%v (%T) is not a string", v, v)
		}
	case "integer":
		switch n := v.(type) {
		case int, int32, int64:
		case json.Number:
			if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
				return fmt.Errorf("%v is not an integer", v)
			}
		case float64:
			if n != float64(int64(n)) {
				return fmt.Errorf("%v is not an integer", v)
			}
		default:
			return fmt.Errorf("%v (%T) is not an integer", v, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%v (%T) is not a boolean", v, v)
		}
	case "map", "properties":
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("%v (%T) is not a map", v, v)
		}
	case "list":
		if _, ok := v.([]any); !ok {
			return fmt.Errorf("%v (%T) is not a list", v, v)
		}
	default:
		return fmt.Errorf("schema type %q not understood", typ)
	}
	return nil
}

// TB is the part of testing.TB the checks use.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// CheckConfig fails the test for every way cfg departs from the schema.
func CheckConfig(t TB, cfg routerconfig.Config) {
	t.Helper()
	s, err := Load()
	if err != nil {
		t.Fatalf("loading the router schema: %v", err)
	}
	for _, err := range s.Check(cfg) {
		t.Errorf("router config departs from skrouter.json: %v", err)
	}
}

// CheckTree checks every runtime/router/skrouterd.json under dir.
func CheckTree(t TB, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "skrouterd.json" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil // removed meanwhile
		}
		cfg, err := routerconfig.Parse(data)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		CheckConfig(t, cfg)
		n++
		return nil
	})
	return n
}
