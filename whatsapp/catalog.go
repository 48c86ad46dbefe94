package whatsapp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// This file holds the template catalog: the approved templates deflectd may
// send, what fills each of their parameters, and the checks that keep a
// malformed template message (Meta's 132000-class errors) from ever leaving
// the process. docs/templates.md describes the file for operators.

// Template categories, as Meta names them.
const (
	CategoryUtility        = "UTILITY"
	CategoryMarketing      = "MARKETING"
	CategoryAuthentication = "AUTHENTICATION"
)

// Parameter formats. A template is created at Meta with one or the other;
// named parameters carry a parameter_name on the wire.
const (
	FormatPositional = "positional"
	FormatNamed      = "named"
)

// Length limits, in characters, applied to a rendered parameter when its
// spec sets no MaxLen. A header or body parameter may set a lower MaxLen,
// never a higher one.
const (
	// DefaultBodyMaxLen is Meta's limit for a whole template body, and so
	// the most one body parameter can ever be.
	DefaultBodyMaxLen = 1024
	// DefaultHeaderMaxLen is Meta's limit for a text header.
	DefaultHeaderMaxLen = 60
	// DefaultButtonMaxLen bounds a quick-reply payload or a URL suffix.
	// Meta documents no exact figure for either, so this is a
	// conservative default; a button spec may raise it up to
	// maxButtonMaxLen.
	DefaultButtonMaxLen = 256
	maxButtonMaxLen     = 2000
)

// PayloadPrefix starts every payload made by CallContext.Payload, so that a
// quick-reply tap can be told apart from other payloads and tied back to its
// outbox key (see ParsePayload).
const PayloadPrefix = "dfl:"

// ParsePayload returns the outbox key carried by a payload made by
// CallContext.Payload, and false for any other payload.
func ParsePayload(p string) (key string, ok bool) {
	key, ok = strings.CutPrefix(p, PayloadPrefix)
	return key, ok && key != ""
}

// CallContext is what the bridge knows of a call when it sends a template.
// Parameter values in the catalog are text/templates executed over it, with
// these names (the fields are as set by the caller; the last four are
// computed):
//
//	{{.CallID}}        the call's id (Asterisk channel unique id)
//	{{.Queue}}         the queue the caller waited in, e.g. "soporte"
//	{{.MenuOption}}    the IVR option the caller chose, e.g. "2"
//	{{.Reason}}        the reason code from the dialplan, e.g. "billing"
//	{{.Language}}      the caller's language from the dialplan, e.g. "es"
//	{{.Wait}}          the time waited, a time.Duration (prints as "7m12s")
//	{{.CallerNumber}}  the caller's number
//	{{.Key}}           the outbox key of the message (call id + kind)
//	{{.WaitMinutes}}   the wait in whole minutes, rounded up (int)
//	{{.WaitText}}      the wait as text, e.g. "7 min"
//	{{.ReasonLabel}}   the catalog's label for Reason in the language of
//	                   the template being rendered, e.g. "Facturación";
//	                   Reason itself when the catalog has none
//	{{.Payload}}       PayloadPrefix + Key, e.g. "dfl:1712.42:offer";
//	                   empty when Key is empty
//
// text/template's built-in functions (if, eq, printf, ...) may be used;
// range, with and template may not, so that every name a value uses is
// checked when the catalog is loaded.
type CallContext struct {
	CallID       string
	Queue        string
	MenuOption   string
	Reason       string
	Language     string
	Wait         time.Duration
	CallerNumber string
	Key          string
}

// WaitMinutes returns the wait in whole minutes, rounded up, so that a
// caller who waited 6m01s is told 7 and never less than they waited. A wait
// of zero or less is 0.
func (cc CallContext) WaitMinutes() int {
	if cc.Wait <= 0 {
		return 0
	}
	m := cc.Wait / time.Minute
	if cc.Wait%time.Minute != 0 {
		m++
	}
	return int(m)
}

// WaitText returns the wait as "N min", WaitMinutes followed by an
// abbreviation that reads the same in Spanish and English.
func (cc CallContext) WaitText() string {
	return strconv.Itoa(cc.WaitMinutes()) + " min"
}

// Payload returns the quick-reply payload for the message: PayloadPrefix
// followed by Key. It is empty when Key is, so that a button that could not
// be tied back to its call is refused rather than sent.
func (cc CallContext) Payload() string {
	if cc.Key == "" {
		return ""
	}
	return PayloadPrefix + cc.Key
}

// renderData is the dot of every parameter template: the call context and
// the reason labels of the language being rendered, which are catalog
// configuration rather than call data.
type renderData struct {
	CallContext
	labels map[string]string
}

// ReasonLabel returns the catalog's label for the call's reason in the
// template's language, or the reason code itself.
func (d renderData) ReasonLabel() string {
	if l, ok := d.labels[d.Reason]; ok {
		return l
	}
	return d.Reason
}

// TemplateSpec is one approved template in one language: what Meta knows it
// as, and how each of its parameters is filled.
type TemplateSpec struct {
	// Name is the template's name at Meta, e.g. "queue_deflect_v1".
	Name string `yaml:"name"`
	// Language is Meta's language code of this translation, e.g. "es_AR".
	Language string `yaml:"language"`
	// Category is UTILITY, MARKETING or AUTHENTICATION.
	Category string `yaml:"category"`
	// ParameterFormat is "positional" (the default) or "named".
	ParameterFormat string `yaml:"parameter_format"`
	// Header holds the text header's parameter, if it has one (Meta
	// allows at most one).
	Header []ParamSpec `yaml:"header"`
	// Body holds the body's parameters, in order.
	Body []ParamSpec `yaml:"body"`
	// Buttons holds the buttons that take a parameter.
	Buttons []ButtonSpec `yaml:"buttons"`
}

// ParamSpec is one text parameter of a header or body.
type ParamSpec struct {
	// Name is the parameter's name, required for named templates and
	// sent as parameter_name; for positional ones it only documents the
	// parameter. It must match ^[a-z_][a-z0-9_]*$.
	Name string `yaml:"name"`
	// Value is a text/template over CallContext, e.g. "{{.ReasonLabel}}".
	Value string `yaml:"value"`
	// MaxLen bounds the rendered value in characters. Zero means
	// DefaultBodyMaxLen or DefaultHeaderMaxLen.
	MaxLen int `yaml:"max_len"`
}

// ButtonSpec is one button of a template that takes a parameter.
type ButtonSpec struct {
	// Type is "quick_reply" or "url".
	Type string `yaml:"type"`
	// Index is the button's position in the template, 0 to 9.
	Index int `yaml:"index"`
	// Payload is a template for a quick_reply button's payload, usually
	// "{{.Payload}}".
	Payload string `yaml:"payload"`
	// Text is a template for a url button's dynamic URL suffix.
	Text string `yaml:"text"`
	// MaxLen bounds the rendered payload or text in characters. Zero means
	// DefaultButtonMaxLen.
	MaxLen int `yaml:"max_len"`
}

// TemplateError is a template message refused locally: a catalog entry that
// does not validate, a parameter that renders to something Meta would
// refuse, or a message that does not match its catalog entry.
type TemplateError struct {
	// Template and Language name the catalog entry.
	Template string
	Language string
	// Field is the offending part, e.g. "body[1]", "buttons[0].payload",
	// "category".
	Field string
	// Reason says what is wrong with it.
	Reason string
	// Line is the catalog file's line, 0 when not loading a file.
	Line int
	// Err is the underlying error, e.g. from text/template.
	Err error
}

func (e *TemplateError) Error() string {
	var b strings.Builder
	b.WriteString("whatsapp: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "catalog line %d: ", e.Line)
	}
	var where []string
	if e.Template != "" || e.Language != "" {
		where = append(where, fmt.Sprintf("template %q", e.Template))
	}
	if e.Language != "" {
		where = append(where, "("+e.Language+")")
	}
	if e.Field != "" {
		where = append(where, e.Field)
	}
	if len(where) > 0 {
		b.WriteString(strings.Join(where, " ") + ": ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *TemplateError) Unwrap() error { return e.Err }

// Catalog is the set of templates deflectd may send, each looked up by name
// and language; a name may have several languages. It is immutable and safe
// for concurrent use. Build one with LoadCatalog, LoadCatalogFile or
// NewCatalog.
type Catalog struct {
	specs  []*compiledSpec
	byName map[string][]*compiledSpec // in file order
	labels map[string]map[string]string
}

type compiledSpec struct {
	spec    TemplateSpec
	header  []*template.Template
	body    []*template.Template
	buttons []*template.Template
}

// catalogFile is the YAML file's shape.
type catalogFile struct {
	// ReasonLabels maps a language code ("es_AR", or a base language
	// such as "es") to reason codes and their labels.
	ReasonLabels map[string]map[string]string `yaml:"reason_labels"`
	Templates    []TemplateSpec               `yaml:"templates"`
}

// maxCatalogSize bounds what LoadCatalog reads; a real catalog is a few KiB.
const maxCatalogSize = 1 << 20

// LoadCatalogFile reads a catalog from a YAML file; see LoadCatalog.
func LoadCatalogFile(path string) (*Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: template catalog: %w", err)
	}
	defer f.Close()
	return LoadCatalog(f)
}

// LoadCatalog reads a catalog from YAML. Decoding is strict (unknown keys,
// duplicate keys and wrong types are errors with their line), and every
// entry is then validated as NewCatalog does. Validation errors are
// *TemplateError values carrying the line of the entry, joined with
// errors.Join so that all of them are reported at once.
func LoadCatalog(r io.Reader) (*Catalog, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCatalogSize+1))
	if err != nil {
		return nil, fmt.Errorf("whatsapp: template catalog: %w", err)
	}
	if len(data) > maxCatalogSize {
		return nil, fmt.Errorf("whatsapp: template catalog: larger than %d bytes", maxCatalogSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var file catalogFile
	if err := dec.Decode(&file); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("whatsapp: template catalog: empty file")
		}
		return nil, fmt.Errorf("whatsapp: template catalog: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("whatsapp: template catalog: more than one YAML document")
	}
	c, errs := newCatalog(file.Templates, file.ReasonLabels)
	if len(errs) > 0 {
		// Parsed a second time, only now, for the lines of the errors:
		// yaml.Node.Decode would lose KnownFields.
		var root yaml.Node
		_ = yaml.Unmarshal(data, &root)
		for _, te := range errs {
			te.Line = te.line(&root)
		}
		return nil, joinTemplateErrors(errs)
	}
	return c, nil
}

// NewCatalog validates specs and reasonLabels (language code → reason code →
// label) and returns a catalog of them. Errors are *TemplateError values,
// joined.
func NewCatalog(specs []TemplateSpec, reasonLabels map[string]map[string]string) (*Catalog, error) {
	c, errs := newCatalog(specs, reasonLabels)
	if len(errs) > 0 {
		return nil, joinTemplateErrors(errs)
	}
	return c, nil
}

func joinTemplateErrors(errs []*locatedError) error {
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e.TemplateError
	}
	return errors.Join(all...)
}

// locatedError is a validation error and where in the YAML tree it is, as
// a path of keys and indexes from the root.
type locatedError struct {
	*TemplateError
	path []any
}

func (e *locatedError) line(root *yaml.Node) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range e.path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
			}
		}
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

var (
	templateNameRE = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
	languageRE     = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2,3})?$`)
	paramNameRE    = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
)

func newCatalog(specs []TemplateSpec, reasonLabels map[string]map[string]string) (*Catalog, []*locatedError) {
	var errs []*locatedError
	fail := func(path []any, tmpl, lang, field, reason string, err error) {
		errs = append(errs, &locatedError{
			TemplateError: &TemplateError{Template: tmpl, Language: lang, Field: field, Reason: reason, Err: err},
			path:          path,
		})
	}
	c := &Catalog{byName: make(map[string][]*compiledSpec), labels: make(map[string]map[string]string)}

	for _, lang := range sortedKeys(reasonLabels) {
		path := []any{"reason_labels", lang}
		if !languageRE.MatchString(lang) {
			fail(path, "", "", "reason_labels", fmt.Sprintf("language %q: want a code such as es_AR or es", lang), nil)
		}
		labels := make(map[string]string, len(reasonLabels[lang]))
		for _, reason := range sortedKeys(reasonLabels[lang]) {
			label := normalizeValue(reasonLabels[lang][reason])
			switch {
			case reason == "":
				fail(path, "", "", "reason_labels."+lang, "empty reason code", nil)
			case label == "":
				fail(append(path, reason), "", "", "reason_labels."+lang+"."+reason, "empty label", nil)
			}
			labels[reason] = label
		}
		c.labels[lang] = labels
	}
	if len(specs) == 0 {
		fail([]any{"templates"}, "", "", "templates", "the catalog has no templates", nil)
	}

	type key struct{ name, lang string }
	seen := make(map[key]int)
	for i, s := range specs {
		path := []any{"templates", i}
		at := func(p ...any) []any { return append(slices.Clone(path), p...) }
		bad := func(p []any, field, reason string, err error) { fail(p, s.Name, s.Language, field, reason, err) }
		cs := &compiledSpec{spec: cloneSpec(s)}

		if !templateNameRE.MatchString(s.Name) {
			bad(at("name"), "name", fmt.Sprintf("templates[%d] %q: want lowercase letters, digits and underscores", i, s.Name), nil)
		}
		if !languageRE.MatchString(s.Language) {
			bad(at("language"), "language", "want a Meta language code such as es_AR or en_US", nil)
		}
		if j, dup := seen[key{s.Name, s.Language}]; dup {
			bad(path, "", fmt.Sprintf("duplicate of templates[%d]", j), nil)
		} else {
			seen[key{s.Name, s.Language}] = i
		}
		switch s.Category {
		case CategoryUtility, CategoryMarketing, CategoryAuthentication:
		default:
			bad(at("category"), "category", fmt.Sprintf("%q: want UTILITY, MARKETING or AUTHENTICATION", s.Category), nil)
		}
		switch s.ParameterFormat {
		case "":
			cs.spec.ParameterFormat = FormatPositional
		case FormatPositional, FormatNamed:
		default:
			bad(at("parameter_format"), "parameter_format", fmt.Sprintf("%q: want positional or named", s.ParameterFormat), nil)
		}
		named := s.ParameterFormat == FormatNamed
		if len(s.Header) > 1 {
			bad(at("header"), "header", fmt.Sprintf("%d parameters: a text header has at most one", len(s.Header)), nil)
		}
		if len(s.Header)+len(s.Body)+len(s.Buttons) == 0 {
			// A template without parameters is valid at Meta; it is
			// also useless to deflectd, which exists to carry context.
			bad(path, "", "no header, body or button parameters", nil)
		}

		for _, part := range []struct {
			yamlKey, kind string
			params        []ParamSpec
			limit         int
			out           *[]*template.Template
		}{
			{"header", ComponentHeader, s.Header, DefaultHeaderMaxLen, &cs.header},
			{"body", ComponentBody, s.Body, DefaultBodyMaxLen, &cs.body},
		} {
			names := make(map[string]bool)
			for j, p := range part.params {
				field := fmt.Sprintf("%s[%d]", part.kind, j)
				switch {
				case p.Name == "" && named:
					bad(at(part.yamlKey, j), field+".name", "required: the template has named parameters", nil)
				case p.Name != "" && !paramNameRE.MatchString(p.Name):
					bad(at(part.yamlKey, j, "name"), field+".name", fmt.Sprintf("%q: want ^[a-z_][a-z0-9_]*$", p.Name), nil)
				case p.Name != "" && names[p.Name]:
					bad(at(part.yamlKey, j, "name"), field+".name", fmt.Sprintf("%q used twice", p.Name), nil)
				}
				names[p.Name] = true
				if p.MaxLen < 0 || p.MaxLen > part.limit {
					bad(at(part.yamlKey, j, "max_len"), field+".max_len", fmt.Sprintf("%d: want 1 to %d (0 for %d)", p.MaxLen, part.limit, part.limit), nil)
				}
				t, err := compileValue(s.Name+"/"+s.Language+" "+field, p.Value)
				if err != nil {
					bad(at(part.yamlKey, j, "value"), field+".value", "bad template", err)
				}
				*part.out = append(*part.out, t)
			}
		}

		indexes := make(map[int]bool)
		for j, b := range s.Buttons {
			field := fmt.Sprintf("buttons[%d]", j)
			if b.Index < 0 || b.Index > 9 {
				bad(at("buttons", j, "index"), field+".index", fmt.Sprintf("%d: want 0 to 9", b.Index), nil)
			} else if indexes[b.Index] {
				bad(at("buttons", j, "index"), field+".index", fmt.Sprintf("%d used twice", b.Index), nil)
			}
			indexes[b.Index] = true
			if b.MaxLen < 0 || b.MaxLen > maxButtonMaxLen {
				bad(at("buttons", j, "max_len"), field+".max_len", fmt.Sprintf("%d: want 1 to %d (0 for %d)", b.MaxLen, maxButtonMaxLen, DefaultButtonMaxLen), nil)
			}
			var src, srcKey string
			switch b.Type {
			case ButtonQuickReply:
				src, srcKey = b.Payload, "payload"
				if b.Text != "" {
					bad(at("buttons", j, "text"), field+".text", "only url buttons have a text", nil)
				}
			case ButtonURL:
				src, srcKey = b.Text, "text"
				if b.Payload != "" {
					bad(at("buttons", j, "payload"), field+".payload", "only quick_reply buttons have a payload", nil)
				}
			default:
				bad(at("buttons", j, "type"), field+".type", fmt.Sprintf("%q: want quick_reply or url", b.Type), nil)
				cs.buttons = append(cs.buttons, nil)
				continue
			}
			t, err := compileValue(s.Name+"/"+s.Language+" "+field, src)
			if err != nil {
				bad(at("buttons", j, srcKey), field+"."+srcKey, "bad template", err)
			}
			cs.buttons = append(cs.buttons, t)
		}
		c.specs = append(c.specs, cs)
		c.byName[s.Name] = append(c.byName[s.Name], cs)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// compileValue parses a parameter template, checks every name it uses
// against the render data, and executes it once over an empty call context,
// so that a mistake is found when the catalog loads rather than when a
// caller is waiting.
func compileValue(name, src string) (*template.Template, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty")
	}
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, err
	}
	for _, x := range t.Templates() {
		if x != t {
			return nil, errors.New("define and block are not allowed")
		}
	}
	if err := checkNode(t.Root); err != nil {
		return nil, err
	}
	if _, err := execute(t, renderData{}); err != nil {
		return nil, err
	}
	return t, nil
}

var renderDataType = reflect.TypeFor[renderData]()

// checkNode walks a parsed template and refuses every name the render data
// does not have. It knows the type of dot everywhere because range and with,
// the only actions that change it, are refused.
func checkNode(n parse.Node) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNode(c); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkNode(n.Pipe)
	case *parse.IfNode:
		for _, c := range []parse.Node{n.Pipe, n.List, n.ElseList} {
			if err := checkNode(c); err != nil {
				return err
			}
		}
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := checkNode(c); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := checkNode(a); err != nil {
				return err
			}
		}
	case *parse.ChainNode:
		return checkNode(n.Node)
	case *parse.FieldNode:
		return checkFields(n.Ident)
	case *parse.VariableNode:
		if len(n.Ident) > 0 && n.Ident[0] == "$" {
			return checkFields(n.Ident[1:])
		}
	case *parse.RangeNode:
		return errors.New("range is not allowed")
	case *parse.WithNode:
		return errors.New("with is not allowed")
	case *parse.TemplateNode:
		return errors.New("template is not allowed")
	}
	return nil
}

// checkFields resolves a chain of names (".Wait.Minutes") from the render
// data through the types they return.
func checkFields(idents []string) error {
	t := renderDataType
	for i, id := range idents {
		if t.Kind() == reflect.Interface || t.Kind() == reflect.Map {
			return nil // known only when executed
		}
		if m, ok := t.MethodByName(id); ok {
			if m.Type.NumOut() == 0 {
				return fmt.Errorf("%s returns nothing", "."+strings.Join(idents[:i+1], "."))
			}
			t = m.Type.Out(0)
			continue
		}
		st := t
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		if st.Kind() == reflect.Struct {
			if f, ok := st.FieldByName(id); ok && f.IsExported() {
				t = f.Type
				continue
			}
		}
		if i == 0 {
			return fmt.Errorf("unknown field .%s: the call context has %s", id, strings.Join(contextNames(), ", "))
		}
		return fmt.Errorf("unknown field .%s: %s has no field or method %s", strings.Join(idents[:i+1], "."), t, id)
	}
	return nil
}

// contextNames lists what a parameter template can use, for error messages.
func contextNames() []string {
	var names []string
	for f := range reflect.TypeFor[CallContext]().Fields() {
		names = append(names, "."+f.Name)
	}
	for m := range renderDataType.Methods() {
		names = append(names, "."+m.Name)
	}
	return names
}

// maxRendered stops a runaway template long before its output could
// matter: no parameter may exceed maxButtonMaxLen characters anyway.
const maxRendered = 4 * maxButtonMaxLen * utf8.UTFMax

type limitedBuffer struct{ bytes.Buffer }

var errTooLong = errors.New("output too long")

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxRendered {
		return 0, errTooLong
	}
	return b.Buffer.Write(p)
}

func execute(t *template.Template, data renderData) (string, error) {
	var b limitedBuffer
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// normalizeValue makes a rendered value acceptable to Meta, which refuses
// parameters with newlines, tabs or more than four consecutive spaces: every
// run of white space or control characters becomes one space, leading and
// trailing ones are dropped, and invalid UTF-8 becomes U+FFFD. Call data
// comes from the dialplan and is not deflectd's to refuse for a stray tab.
func normalizeValue(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// Templates returns a copy of the catalog's entries, in file order.
func (c *Catalog) Templates() []TemplateSpec {
	out := make([]TemplateSpec, len(c.specs))
	for i, cs := range c.specs {
		out[i] = cloneSpec(cs.spec)
	}
	return out
}

// Lookup returns a copy of the entry Render would use for name and
// language (see Render for the language fallback), or false if the catalog
// has no template of that name.
func (c *Catalog) Lookup(name, language string) (TemplateSpec, bool) {
	cs := c.lookup(name, language)
	if cs == nil {
		return TemplateSpec{}, false
	}
	return cloneSpec(cs.spec), true
}

// lookup finds name in language; failing that, in the first language of
// the same base language ("es" or "es_MX" finds es_AR); failing that, in
// the name's first language in the catalog.
func (c *Catalog) lookup(name, language string) *compiledSpec {
	if c == nil {
		return nil
	}
	specs := c.byName[name]
	if len(specs) == 0 {
		return nil
	}
	for _, cs := range specs {
		if cs.spec.Language == language {
			return cs
		}
	}
	base, _, _ := strings.Cut(language, "_")
	for _, cs := range specs {
		if b, _, _ := strings.Cut(cs.spec.Language, "_"); b == base {
			return cs
		}
	}
	return specs[0]
}

// reasonLabels returns the labels for a language: its own, else its base
// language's.
func (c *Catalog) reasonLabels(language string) map[string]string {
	if l, ok := c.labels[language]; ok {
		return l
	}
	base, _, _ := strings.Cut(language, "_")
	return c.labels[base]
}

// Render builds the template message name in language to the recipient to,
// its parameters filled from cc. When the catalog lacks that language, it
// uses the first entry of the same base language (a caller's "es" gets
// es_AR), else the name's first language in the catalog: a message in
// another language beats no message.
//
// Every rendered value is normalized (each run of white space or control
// characters becomes one space, and the value is trimmed: Meta refuses
// newlines, tabs and runs of more than four spaces); a value that is then
// empty or longer than its MaxLen is an error. Every error is
// a *TemplateError, and nothing is sent that Meta would refuse for its
// shape.
func (c *Catalog) Render(name, language, to string, cc CallContext) (*Message, error) {
	cs := c.lookup(name, language)
	if cs == nil {
		return nil, &TemplateError{Template: name, Language: language, Reason: "not in the catalog"}
	}
	s := &cs.spec
	if strings.TrimSpace(to) == "" {
		return nil, &TemplateError{Template: s.Name, Language: s.Language, Field: "to", Reason: "no recipient"}
	}
	data := renderData{CallContext: cc, labels: c.reasonLabels(s.Language)}
	named := s.ParameterFormat == FormatNamed
	render := func(t *template.Template, field string, limit int) (string, error) {
		out, err := execute(t, data)
		if err != nil {
			return "", &TemplateError{Template: s.Name, Language: s.Language, Field: field, Reason: "rendering failed", Err: err}
		}
		v := normalizeValue(out)
		if v == "" {
			return "", &TemplateError{Template: s.Name, Language: s.Language, Field: field, Reason: "rendered value is empty"}
		}
		if n := utf8.RuneCountInString(v); n > limit {
			return "", &TemplateError{Template: s.Name, Language: s.Language, Field: field, Reason: fmt.Sprintf("rendered value has %d characters, more than %d", n, limit)}
		}
		return v, nil
	}
	textParams := func(kind string, specs []ParamSpec, tmpls []*template.Template, def int) ([]Parameter, error) {
		params := make([]Parameter, 0, len(specs))
		for j, p := range specs {
			v, err := render(tmpls[j], fmt.Sprintf("%s[%d]", kind, j), maxLen(p.MaxLen, def))
			if err != nil {
				return nil, err
			}
			param := Parameter{Type: ParamText, Text: v}
			if named {
				param.ParameterName = p.Name
			}
			params = append(params, param)
		}
		return params, nil
	}

	var comps []Component
	for _, part := range []struct {
		kind  string
		specs []ParamSpec
		tmpls []*template.Template
		def   int
	}{
		{ComponentHeader, s.Header, cs.header, DefaultHeaderMaxLen},
		{ComponentBody, s.Body, cs.body, DefaultBodyMaxLen},
	} {
		if len(part.specs) == 0 {
			continue
		}
		params, err := textParams(part.kind, part.specs, part.tmpls, part.def)
		if err != nil {
			return nil, err
		}
		comps = append(comps, Component{Type: part.kind, Parameters: params})
	}
	for j, b := range s.Buttons {
		field := fmt.Sprintf("buttons[%d]", j)
		v, err := render(cs.buttons[j], field, maxLen(b.MaxLen, DefaultButtonMaxLen))
		if err != nil {
			return nil, err
		}
		param := Parameter{Type: ParamText, Text: v}
		if b.Type == ButtonQuickReply {
			param = Parameter{Type: ParamPayload, Payload: v}
		}
		comps = append(comps, Component{Type: ComponentButton, SubType: b.Type, Index: strconv.Itoa(b.Index), Parameters: []Parameter{param}})
	}
	return NewTemplateMessage(to, Template{
		Name:       s.Name,
		Language:   Language{Policy: "deterministic", Code: s.Language},
		Components: comps,
	}), nil
}

// Validate checks a template message built elsewhere against the catalog
// entry of its name and language (exactly; no fallback). See
// TemplateSpec.Validate.
func (c *Catalog) Validate(m *Message) error {
	if m == nil || m.Template == nil {
		return &TemplateError{Reason: "not a template message"}
	}
	for _, cs := range c.byName[m.Template.Name] {
		if cs.spec.Language == m.Template.Language.Code {
			return cs.spec.Validate(m)
		}
	}
	return &TemplateError{Template: m.Template.Name, Language: m.Template.Language.Code, Reason: "not in the catalog"}
}

// Validate checks that m is a message of this template that Meta will accept
// for its shape: the name and language, one header and one body component
// with exactly the spec's parameters (named, with the right names, or
// positional, without), each button with its index and sub_type, and every
// value non-empty, within its length and free of the white space Meta
// refuses. It is the local check that keeps 132000-class errors (wrong
// parameter count, format, length) from reaching Meta.
func (s *TemplateSpec) Validate(m *Message) error {
	bad := func(field, format string, args ...any) error {
		return &TemplateError{Template: s.Name, Language: s.Language, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case m == nil:
		return bad("", "no message")
	case m.MessagingProduct != "whatsapp":
		return bad("messaging_product", "%q: want whatsapp", m.MessagingProduct)
	case m.Type != TypeTemplate || m.Template == nil:
		return bad("type", "%q: not a template message", m.Type)
	case strings.TrimSpace(m.To) == "":
		return bad("to", "no recipient")
	case m.Template.Name != s.Name:
		return bad("name", "message is for template %q", m.Template.Name)
	case m.Template.Language.Code != s.Language:
		return bad("language", "message is in %q", m.Template.Language.Code)
	case m.Template.Language.Policy != "" && m.Template.Language.Policy != "deterministic":
		return bad("language", "policy %q: want deterministic", m.Template.Language.Policy)
	}
	named := s.ParameterFormat == FormatNamed
	seen := make(map[string]bool)
	buttons := make(map[int]bool)
	for i, comp := range m.Template.Components {
		switch comp.Type {
		case ComponentHeader, ComponentBody:
			if seen[comp.Type] {
				return bad(fmt.Sprintf("components[%d]", i), "second %s component", comp.Type)
			}
			seen[comp.Type] = true
			specs, def := s.Body, DefaultBodyMaxLen
			if comp.Type == ComponentHeader {
				specs, def = s.Header, DefaultHeaderMaxLen
			}
			if err := validateParams(comp, specs, def, named, bad); err != nil {
				return err
			}
		case ComponentButton:
			field := fmt.Sprintf("components[%d]", i)
			idx, err := strconv.Atoi(comp.Index)
			if err != nil || strconv.Itoa(idx) != comp.Index {
				return bad(field, "button index %q: want a number", comp.Index)
			}
			j := slices.IndexFunc(s.Buttons, func(b ButtonSpec) bool { return b.Index == idx })
			if j < 0 {
				return bad(field, "no button %d takes a parameter", idx)
			}
			if buttons[idx] {
				return bad(field, "button %d given twice", idx)
			}
			buttons[idx] = true
			b := s.Buttons[j]
			field = fmt.Sprintf("buttons[%d]", j)
			if comp.SubType != b.Type {
				return bad(field, "sub_type %q: want %s", comp.SubType, b.Type)
			}
			if len(comp.Parameters) != 1 {
				return bad(field, "%d parameters, want 1", len(comp.Parameters))
			}
			p := comp.Parameters[0]
			v, typ := p.Payload, ParamPayload
			if b.Type == ButtonURL {
				v, typ = p.Text, ParamText
			}
			if p.Type != typ {
				return bad(field, "parameter type %q: want %s", p.Type, typ)
			}
			if reason := checkValue(v, maxLen(b.MaxLen, DefaultButtonMaxLen)); reason != "" {
				return bad(field, "%s", reason)
			}
		default:
			return bad(fmt.Sprintf("components[%d]", i), "component type %q: want header, body or button", comp.Type)
		}
	}
	if len(s.Header) > 0 && !seen[ComponentHeader] {
		return bad("header", "missing: the template has %d header parameters", len(s.Header))
	}
	if len(s.Body) > 0 && !seen[ComponentBody] {
		return bad("body", "missing: the template has %d body parameters", len(s.Body))
	}
	for j, b := range s.Buttons {
		if !buttons[b.Index] {
			return bad(fmt.Sprintf("buttons[%d]", j), "missing: button %d takes a parameter", b.Index)
		}
	}
	return nil
}

func validateParams(comp Component, specs []ParamSpec, def int, named bool, bad func(string, string, ...any) error) error {
	if len(comp.Parameters) != len(specs) {
		return bad(comp.Type, "%d parameters, want %d", len(comp.Parameters), len(specs))
	}
	used := make(map[string]bool)
	for j, p := range comp.Parameters {
		field := fmt.Sprintf("%s[%d]", comp.Type, j)
		spec := specs[j]
		switch {
		case p.Type != ParamText:
			return bad(field, "parameter type %q: want text", p.Type)
		case named && p.ParameterName == "":
			return bad(field, "no parameter_name: the template has named parameters")
		case !named && p.ParameterName != "":
			return bad(field, "parameter_name %q: the template has positional parameters", p.ParameterName)
		}
		if named {
			// Named parameters are matched by name, in any order.
			k := slices.IndexFunc(specs, func(s ParamSpec) bool { return s.Name == p.ParameterName })
			if k < 0 {
				return bad(field, "parameter_name %q is not one of the template's", p.ParameterName)
			}
			if used[p.ParameterName] {
				return bad(field, "parameter_name %q given twice", p.ParameterName)
			}
			used[p.ParameterName] = true
			spec = specs[k]
		}
		if reason := checkValue(p.Text, maxLen(spec.MaxLen, def)); reason != "" {
			return bad(field, "%s", reason)
		}
	}
	return nil
}

// checkValue says why Meta would refuse a parameter value, or "".
func checkValue(v string, limit int) string {
	switch {
	case strings.TrimSpace(v) == "":
		return "empty value"
	case strings.ContainsAny(v, "\n\t"):
		return "value has a newline or tab"
	case strings.Contains(v, "     "):
		return "value has more than four consecutive spaces"
	case utf8.RuneCountInString(v) > limit:
		return fmt.Sprintf("value has %d characters, more than %d", utf8.RuneCountInString(v), limit)
	}
	return ""
}

func maxLen(set, def int) int {
	if set > 0 {
		return set
	}
	return def
}

func cloneSpec(s TemplateSpec) TemplateSpec {
	s.Header = slices.Clone(s.Header)
	s.Body = slices.Clone(s.Body)
	s.Buttons = slices.Clone(s.Buttons)
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
