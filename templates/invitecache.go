package templates

import (
	"slices"
	"text/template/parse"
)

// maxInviteCache and maxInviteCacheBytes bound the renderings
// RenderInvite keeps (Set.invites): a fan-out renders the same event for
// every attendee, and rendering is a pure function of the data.
const (
	maxInviteCache      = 1024
	maxInviteCacheBytes = 8 << 20
)

// RenderInvite is Render("invite", data), through a cache when the
// templates render the same for every attendee (with templates that show
// the attendee's name, each rendering is used once: nothing is kept).
func (s *Set) RenderInvite(data Invite) (text, html string, err error) {
	if s.invitesNamed {
		return s.Render("invite", data)
	}
	key := data
	key.AttendeeName = ""
	if r, ok := s.invites.Get(key); ok {
		return r.text, r.html, nil
	}
	if text, html, err = s.Render("invite", data); err != nil {
		return "", "", err
	}
	r := rendered{text, html, len(text) + len(html) + key.size()}
	if r.size <= maxInviteCacheBytes/16 { // one huge event is not worth a sixteenth of the cache
		s.invites.Put(key, r)
	}
	return text, html, nil
}

// rendered is a kept rendering; size counts its key's strings too, which
// the cache holds as well and which can be as long as the text (the
// description).
type rendered struct {
	text, html string
	size       int
}

// size is what the strings of an Invite used as a key hold (keys have no
// AttendeeName).
func (k Invite) size() int {
	return len(k.Kind) + len(k.Summary) + len(k.When) + len(k.Location) + len(k.Description) +
		len(k.Organizer) + len(k.Occurrence)
}

// initInviteCache decides whether the invite templates see AttendeeName.
func (s *Set) initInviteCache() {
	var trees []*parse.Tree
	if t, ok := s.text["invite"]; ok {
		for _, a := range t.Templates() {
			trees = append(trees, a.Tree)
		}
	}
	if t, ok := s.html["invite"]; ok {
		for _, a := range t.Templates() {
			trees = append(trees, a.Tree)
		}
	}
	s.invitesNamed = mayRead(trees, "AttendeeName")
	s.invites.Max, s.invites.MaxSize = maxInviteCache, maxInviteCacheBytes
	s.invites.Size = func(r rendered) int { return r.size }
}

// mayRead reports whether any of trees may read field of its data: it
// names the field, or uses the data whole (which could print it), other
// than to hand it to another template (whose tree is among trees).
func mayRead(trees []*parse.Tree, field string) bool {
	var walk func(n parse.Node) bool
	list := func(l *parse.ListNode) bool { return l != nil && walk(l) }
	pipe := func(p *parse.PipeNode) bool { return p != nil && walk(p) }
	walk = func(n parse.Node) bool {
		switch n := n.(type) {
		case *parse.ListNode:
			return slices.ContainsFunc(n.Nodes, walk)
		case *parse.ActionNode:
			return pipe(n.Pipe)
		case *parse.PipeNode:
			return slices.ContainsFunc(n.Cmds, func(c *parse.CommandNode) bool { return walk(c) })
		case *parse.CommandNode:
			return slices.ContainsFunc(n.Args, walk)
		case *parse.FieldNode:
			return slices.Contains(n.Ident, field)
		case *parse.ChainNode:
			return slices.Contains(n.Field, field) || walk(n.Node)
		case *parse.VariableNode:
			// $ alone is the data whole.
			return (len(n.Ident) == 1 && n.Ident[0] == "$") || slices.Contains(n.Ident, field)
		case *parse.DotNode:
			return true
		case *parse.IfNode:
			return pipe(n.Pipe) || list(n.List) || list(n.ElseList)
		case *parse.RangeNode:
			return pipe(n.Pipe) || list(n.List) || list(n.ElseList)
		case *parse.WithNode:
			return pipe(n.Pipe) || list(n.List) || list(n.ElseList)
		case *parse.TemplateNode:
			if p := n.Pipe; p != nil && len(p.Cmds) == 1 && len(p.Cmds[0].Args) == 1 {
				if _, dot := p.Cmds[0].Args[0].(*parse.DotNode); dot {
					return false
				}
			}
			return pipe(n.Pipe)
		}
		return false
	}
	for _, t := range trees {
		if t != nil && list(t.Root) {
			return true
		}
	}
	return false
}
