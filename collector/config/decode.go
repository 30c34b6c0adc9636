package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// checker walks a YAML node tree alongside the Go type it decodes into,
// before it is decoded. Each mistake is found at its own node, which knows
// its line, while the walk knows the field's path: no line or field has to
// be recovered from the YAML library's error messages. The walk also
// indexes the line of every field, for the validation errors found after
// decoding.
type checker struct {
	// lines holds the line of each field's key, or of each list element,
	// by dotted path ("modules.mx.smtp.tls", "targets[2].name").
	lines map[string]int
	// checked holds the anchored nodes already checked against a type. An
	// anchor's content is the same wherever an alias repeats it, so one
	// check is enough; checking it again at every alias would take
	// exponential time on a document of aliases to aliases.
	checked map[checkedKey]bool
	fields  map[reflect.Type]*structFields
}

type checkedKey struct {
	node *yaml.Node
	t    reflect.Type
}

func newChecker() *checker {
	return &checker{lines: map[string]int{}, checked: map[checkedKey]bool{}, fields: map[reflect.Type]*structFields{}}
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	nodeType     = reflect.TypeFor[yaml.Node]()
	// Types that decode themselves, as the YAML library calls them.
	unmarshalerTypes = []reflect.Type{
		reflect.TypeFor[yaml.Unmarshaler](),
		reflect.TypeFor[interface{ UnmarshalYAML(func(any) error) error }](),
	}
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// check reports the first mistake in n, in document order, as decoded
// into a value of type t at path.
func (c *checker) check(n *yaml.Node, t reflect.Type, path string) *ConfigError {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return c.check(n.Content[0], t, path)
	case yaml.AliasNode:
		key := checkedKey{n.Alias, t}
		if c.checked[key] {
			return nil
		}
		c.checked[key] = true
		return c.check(n.Alias, t, path)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.ShortTag() == "!!null":
		// The YAML library leaves the zero value for null, whatever the
		// type; validation says when a setting is required.
		return nil
	case t == nodeType || t.Kind() == reflect.Interface:
		return nil
	case t == durationType:
		return c.checkDuration(n, path)
	case decodesItself(t):
		return c.checkSelfDecoding(n, t, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		return c.checkStruct(n, t, path)
	case reflect.Map:
		return c.checkMap(n, t, path)
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return mismatch(n, t, path)
		}
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			c.lines[p] = e.Line
			if err := c.check(e, t.Elem(), p); err != nil {
				return err
			}
		}
		return nil
	}
	return checkScalar(n, t, path)
}

// checkScalar lets the YAML library decode the value on its own: whatever
// it refuses (a string for an integer, 300 for a uint8) is reported here,
// at the value.
func checkScalar(n *yaml.Node, t reflect.Type, path string) *ConfigError {
	if n.Kind != yaml.ScalarNode {
		return mismatch(n, t, path)
	}
	if n.Decode(reflect.New(t).Interface()) != nil {
		return mismatch(n, t, path)
	}
	return nil
}

func (c *checker) checkDuration(n *yaml.Node, path string) *ConfigError {
	if n.Kind != yaml.ScalarNode {
		return &ConfigError{Line: n.Line, Field: path, Msg: "want a duration such as 15s or 1m30s, got " + describe(n)}
	}
	var d time.Duration
	if n.Decode(&d) != nil {
		return &ConfigError{Line: n.Line, Field: path, Msg: fmt.Sprintf("invalid duration %q: want a number with a unit (ms, s, m or h), e.g. 15s or 1m30s", n.Value)}
	}
	return nil
}

// checkSelfDecoding checks a type with its own decoding method. A struct
// with a YAML one (config.TLSConfig) decodes its fields as the struct they
// are, then validates them: its keys are checked as a struct's, then its
// own method's error is reported at the mapping. Any other such type
// (config.Secret, config.TLSVersion, netip.AddrPort) is written as a
// string.
func (c *checker) checkSelfDecoding(n *yaml.Node, t reflect.Type, path string) *ConfigError {
	if fromMapping(t) {
		if err := c.checkStruct(n, t, path); err != nil {
			return err
		}
	} else if n.Kind != yaml.ScalarNode {
		return mismatch(n, t, path)
	}
	err := n.Decode(reflect.New(t).Interface())
	switch err.(type) {
	case nil:
		return nil
	case *yaml.TypeError:
		// The method asked the library for a value it could not give:
		// the node is of the wrong kind.
		return mismatch(n, t, path)
	}
	return &ConfigError{Line: n.Line, Field: path, Msg: err.Error()}
}

func (c *checker) checkStruct(n *yaml.Node, t reflect.Type, path string) *ConfigError {
	if n.Kind != yaml.MappingNode {
		return mismatch(n, t, path)
	}
	fields := c.fieldsOf(t)
	return c.checkMapping(n, t, path, func(k *yaml.Node) (reflect.Type, *ConfigError) {
		if ft, ok := fields.byKey[k.Value]; ok {
			return ft, nil
		}
		if fields.inlineMap != nil {
			return fields.inlineMap, nil
		}
		return nil, &ConfigError{Line: k.Line, Field: join(path, k.Value), Msg: fmt.Sprintf("unknown field %q", k.Value)}
	})
}

func (c *checker) checkMap(n *yaml.Node, t reflect.Type, path string) *ConfigError {
	if n.Kind != yaml.MappingNode {
		return mismatch(n, t, path)
	}
	return c.checkMapping(n, t, path, func(k *yaml.Node) (reflect.Type, *ConfigError) {
		return t.Elem(), c.check(k, t.Key(), join(path, k.Value))
	})
}

// checkMapping checks the entries of a mapping for a struct or a map,
// valueType giving the type of a key's value. Merge keys ("<<: *base")
// bring in the entries of other mappings, checked against the same type.
func (c *checker) checkMapping(n *yaml.Node, t reflect.Type, path string, valueType func(k *yaml.Node) (reflect.Type, *ConfigError)) *ConfigError {
	// As the YAML library does (only when decoding into Go values: a
	// node tree keeps duplicates), a key of the same kind and text twice
	// is an error.
	type seenKey struct {
		kind  yaml.Kind
		value string
	}
	seen := make(map[seenKey]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if line, dup := seen[seenKey{k.Kind, k.Value}]; dup {
			return &ConfigError{Line: k.Line, Field: p, Msg: fmt.Sprintf("mapping key %q already defined at line %d", k.Value, line)}
		}
		seen[seenKey{k.Kind, k.Value}] = k.Line
		if k.ShortTag() == "!!merge" {
			if err := c.checkMerge(v, t, path); err != nil {
				return err
			}
			continue
		}
		vt, err := valueType(k)
		if err != nil {
			return err
		}
		if err := c.check(v, vt, p); err != nil {
			return err
		}
	}
	// Indexed last, so that a key written here wins over the one a merge
	// key brought in, as its value does.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.ShortTag() != "!!merge" {
			c.lines[join(path, k.Value)] = k.Line
		}
	}
	return nil
}

// checkMerge checks what a merge key brings in: a mapping, an alias to
// one, or a list of them.
func (c *checker) checkMerge(v *yaml.Node, t reflect.Type, path string) *ConfigError {
	if v.Kind == yaml.SequenceNode {
		for _, e := range v.Content {
			if err := c.check(e, t, path); err != nil {
				return err
			}
		}
		return nil
	}
	return c.check(v, t, path)
}

// structFields are the keys a struct decodes, as the YAML library finds
// them: the yaml tag's name or the lowercased field name, with ",inline"
// structs' keys merged in and an ",inline" map taking any other key.
type structFields struct {
	byKey     map[string]reflect.Type
	inlineMap reflect.Type // the inline map's value type, or nil
}

func (c *checker) fieldsOf(t reflect.Type) *structFields {
	if f, ok := c.fields[t]; ok {
		return f
	}
	f := &structFields{byKey: map[string]reflect.Type{}}
	for i := range t.NumField() {
		field := t.Field(i)
		if field.PkgPath != "" && !field.Anonymous {
			continue
		}
		tag := field.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		if strings.Contains(","+flags+",", ",inline,") {
			ft := field.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Map {
				f.inlineMap = ft.Elem()
				continue
			}
			inner := c.fieldsOf(ft)
			for k, v := range inner.byKey {
				f.byKey[k] = v
			}
			if inner.inlineMap != nil {
				f.inlineMap = inner.inlineMap
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(field.Name)
		}
		f.byKey[name] = field.Type
	}
	c.fields[t] = f
	return f
}

// decodesItself reports a type whose own method decodes it, so that its
// YAML form is not the one of its Go kind.
func decodesItself(t reflect.Type) bool {
	return unmarshalsYAML(t) || reflect.PointerTo(t).Implements(textUnmarshalerType)
}

func unmarshalsYAML(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, u := range unmarshalerTypes {
		if p.Implements(u) {
			return true
		}
	}
	return false
}

// fromMapping reports a self-decoding struct written as a mapping of its
// fields (the "type plain T" idiom of prometheus/common), as opposed to
// one decoded from text.
func fromMapping(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && unmarshalsYAML(t)
}

// mismatch says what a setting wants and what the document has, in words
// an operator reads without knowing Go types.
func mismatch(n *yaml.Node, t reflect.Type, path string) *ConfigError {
	return &ConfigError{Line: n.Line, Field: path, Msg: "want " + wantOf(t) + ", got " + describe(n)}
}

// wantOf names what a value of type t is written as.
func wantOf(t reflect.Type) string {
	if decodesItself(t) && !fromMapping(t) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// describe names what a node holds.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch tag := n.ShortTag(); tag {
	case "!!str":
		return fmt.Sprintf("a string %q", n.Value)
	case "!!int":
		return "an integer " + n.Value
	case "!!float":
		return "a number " + n.Value
	case "!!bool":
		return "a boolean " + n.Value
	case "!!null":
		return "null"
	case "!!timestamp":
		return "a timestamp " + n.Value
	default:
		return fmt.Sprintf("%s %q", tag, n.Value)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
