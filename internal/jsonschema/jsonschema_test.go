package jsonschema

import (
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["name", "items"],
  "additionalProperties": false,
  "properties": {
    "name": {"type": "string"},
    "count": {"type": "integer", "minimum": 0, "maximum": 10},
    "when": {"type": "string", "format": "date-time"},
    "kind": {"enum": ["a", "b"]},
    "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
    "maybe": {"type": ["string", "null"]}
  },
  "$defs": {"item": {"type": "object", "required": ["id"], "properties": {"id": {"type": "number"}}}}
}`

func TestValidate(t *testing.T) {
	s, err := Compile([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		doc  string
		want string // substring of the first error; empty: valid
	}{
		{`{"name":"x","items":[]}`, ""},
		{`{"name":"x","items":[{"id":1.5}],"count":3,"when":"2026-11-27T10:00:00Z","kind":"b","maybe":null}`, ""},
		{`{"items":[]}`, `required property "name"`},
		{`{"name":1,"items":[]}`, `$.name: is number, want type string`},
		{`{"name":"x","items":[],"extra":1}`, `property "extra" is not in the schema`},
		{`{"name":"x","items":[{}]}`, `$.items[0]: required property "id"`},
		{`{"name":"x","items":[{"id":"1"}]}`, `$.items[0].id: is string`},
		{`{"name":"x","items":[],"count":1.5}`, `want type integer`},
		{`{"name":"x","items":[],"count":-1}`, `below the minimum`},
		{`{"name":"x","items":[],"count":11}`, `above the maximum`},
		{`{"name":"x","items":[],"when":"yesterday"}`, `not an RFC 3339 date-time`},
		{`{"name":"x","items":[],"kind":"c"}`, `is not one of`},
		{`{"name":"x","items":[],"maybe":3}`, `want type`},
		{`[1]`, `is array, want type object`},
		{`{`, `not JSON`},
	} {
		errs := s.Validate([]byte(tc.doc))
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: unexpected errors %v", tc.doc, errs)
		case tc.want != "" && len(errs) == 0:
			t.Errorf("%s: valid, want an error containing %q", tc.doc, tc.want)
		case tc.want != "" && !strings.Contains(errs[0].Error(), tc.want):
			t.Errorf("%s: error %v, want one containing %q", tc.doc, errs, tc.want)
		}
	}
}

func TestCompileRefusesWhatItCannotCheck(t *testing.T) {
	for _, doc := range []string{
		`{"oneOf": []}`,
		`{"properties": {"a": {"pattern": "x"}}}`,
		`{"additionalProperties": {"type": "string"}}`,
		`{"$ref": "#/$defs/missing"}`,
		`{"$ref": "other.json"}`,
		`{"format": "email"}`,
		`not json`,
	} {
		if _, err := Compile([]byte(doc)); err == nil {
			t.Errorf("%s: compiled, want an error", doc)
		}
	}
}

// TestPublishedSchemaCompiles: the schema the API documents uses only
// what this validator checks.
func TestPublishedSchemaCompiles(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api/targets.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(doc); err != nil {
		t.Fatal(err)
	}
}
