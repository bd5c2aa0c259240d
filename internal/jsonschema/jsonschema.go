// Package jsonschema validates JSON documents against the subset of JSON
// Schema (draft 2020-12) the exporter's published schemas use: type,
// enum, properties, required, additionalProperties (a boolean), items,
// minimum, maximum, format "date-time" and local $ref into $defs. A
// keyword outside that subset is an error rather than silently ignored,
// so a schema cannot promise more than the tests check.
package jsonschema

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Schema is a compiled schema document.
type Schema struct {
	root map[string]any
}

// annotations carry no constraint.
var annotations = []string{"$schema", "$id", "$defs", "title", "description", "examples", "$comment"}

var known = []string{"type", "enum", "properties", "required", "additionalProperties", "items", "minimum", "maximum", "format", "$ref"}

// Compile parses a schema and checks that it uses only the supported
// subset and that every $ref resolves.
func Compile(doc []byte) (*Schema, error) {
	var root map[string]any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("schema is not a JSON object: %w", err)
	}
	s := &Schema{root: root}
	if err := s.check(root, "#"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Schema) check(node map[string]any, at string) error {
	for k, v := range node {
		switch {
		case k == "$defs":
			defs, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s/$defs: not an object", at)
			}
			for name, d := range defs {
				dm, ok := d.(map[string]any)
				if !ok {
					return fmt.Errorf("%s/$defs/%s: not an object", at, name)
				}
				if err := s.check(dm, at+"/$defs/"+name); err != nil {
					return err
				}
			}
		case slices.Contains(annotations, k):
		case !slices.Contains(known, k):
			return fmt.Errorf("%s: keyword %q is not supported by this validator", at, k)
		case k == "properties":
			props, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s/properties: not an object", at)
			}
			for name, p := range props {
				pm, ok := p.(map[string]any)
				if !ok {
					return fmt.Errorf("%s/properties/%s: not an object", at, name)
				}
				if err := s.check(pm, at+"/properties/"+name); err != nil {
					return err
				}
			}
		case k == "items":
			im, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s/items: not an object", at)
			}
			if err := s.check(im, at+"/items"); err != nil {
				return err
			}
		case k == "additionalProperties":
			if _, ok := v.(bool); !ok {
				return fmt.Errorf("%s/additionalProperties: only booleans are supported", at)
			}
		case k == "format":
			if v != "date-time" {
				return fmt.Errorf("%s: format %v is not supported", at, v)
			}
		case k == "$ref":
			ref, _ := v.(string)
			if _, err := s.resolve(ref); err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
		}
	}
	return nil
}

func (s *Schema) resolve(ref string) (map[string]any, error) {
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok || strings.Contains(name, "/") {
		return nil, fmt.Errorf("$ref %q: only #/$defs/<name> is supported", ref)
	}
	defs, _ := s.root["$defs"].(map[string]any)
	d, ok := defs[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q does not resolve", ref)
	}
	return d, nil
}

// Validate checks a JSON document and returns every violation found,
// each with the path of the offending value.
func (s *Schema) Validate(doc []byte) []error {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return []error{fmt.Errorf("not JSON: %w", err)}
	}
	var errs []error
	s.validate(s.root, v, "$", &errs)
	return errs
}

func (s *Schema) validate(node map[string]any, v any, at string, errs *[]error) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", at, fmt.Sprintf(format, args...)))
	}
	if ref, ok := node["$ref"].(string); ok {
		d, _ := s.resolve(ref) // checked by Compile
		s.validate(d, v, at, errs)
	}
	if t, ok := node["type"]; ok && !typeMatches(t, v) {
		fail("is %s, want type %v", typeOf(v), t)
		return
	}
	if e, ok := node["enum"].([]any); ok {
		found := false
		for _, allowed := range e {
			if fmt.Sprint(allowed) == fmt.Sprint(v) && typeOf(allowed) == typeOf(v) {
				found = true
			}
		}
		if !found {
			fail("%v is not one of %v", v, e)
		}
	}
	if n, ok := v.(json.Number); ok {
		f, _ := n.Float64()
		if m, ok := node["minimum"].(float64); ok && f < m {
			fail("%v is below the minimum %v", f, m)
		}
		if m, ok := node["maximum"].(float64); ok && f > m {
			fail("%v is above the maximum %v", f, m)
		}
	}
	if node["format"] == "date-time" {
		if str, ok := v.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("%q is not an RFC 3339 date-time", str)
			}
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := node["properties"].(map[string]any)
		if req, ok := node["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					fail("required property %q is missing", r)
				}
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, ok := props[k].(map[string]any)
			if !ok {
				if node["additionalProperties"] == false {
					fail("property %q is not in the schema", k)
				}
				continue
			}
			s.validate(p, obj[k], at+"."+k, errs)
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := node["items"].(map[string]any); ok {
			for i, e := range arr {
				s.validate(items, e, fmt.Sprintf("%s[%d]", at, i), errs)
			}
		}
	}
}

func typeMatches(t, v any) bool {
	switch t := t.(type) {
	case string:
		return typeIs(t, v)
	case []any:
		for _, one := range t {
			if s, ok := one.(string); ok && typeIs(s, v) {
				return true
			}
		}
	}
	return false
}

func typeIs(t string, v any) bool {
	switch t {
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	case "number":
		_, ok := v.(json.Number)
		return ok
	}
	return typeOf(v) == t
}

func typeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
