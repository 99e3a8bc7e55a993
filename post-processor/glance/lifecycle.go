package glance

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// Usage is what Nova says about the instances booted from an image.
type Usage struct {
	// Known is false when Nova could not be asked (no compute endpoint,
	// refused); Err says why.
	Known bool
	// AllProjects: the answer covers every project (all_tenants), not only
	// the caller's.
	AllProjects bool
	Servers     int
	Projects    []string
	Err         string
}

func (u Usage) String() string {
	switch {
	case !u.Known:
		return "use unknown (" + u.Err + ")"
	case u.Servers == 0 && u.AllProjects:
		return "no instance uses it"
	case u.Servers == 0:
		return "no instance of this project uses it (other projects could not be asked)"
	}
	scope := ""
	if !u.AllProjects {
		scope = " of this project"
	}
	return fmt.Sprintf("%d instance(s)%s use it (projects %s)", u.Servers, scope, strings.Join(u.Projects, ", "))
}

// RetireAction is what the retire policy does to one older image.
type RetireAction struct {
	ImageID string
	Name    string
	// Action: "hide", "share" (shared with the using projects only, and
	// hidden), "delete", or "none" (left as it is).
	Action string
	Usage  Usage
	// Parts are the kernel and ramdisk of a UEC root file system, which
	// are deleted with it.
	Parts  []string
	Reason string
	Done   bool
}

func (a RetireAction) String() string {
	s := fmt.Sprintf("%s %s (%s): %s", a.Action, a.ImageID, a.Name, a.Usage)
	if a.Reason != "" {
		s += "; " + a.Reason
	}
	if len(a.Parts) > 0 {
		s += fmt.Sprintf("; with its kernel and ramdisk %s", strings.Join(a.Parts, ", "))
	}
	return s
}

// usageOf asks Nova for the servers booted from image: of all projects
// (all_tenants, admin by default policy), else of the caller's own.
func usageOf(ctx context.Context, compute *gophercloud.ServiceClient, imageID string) Usage {
	list := func(all bool) ([]servers.Server, error) {
		pages, err := servers.List(compute, servers.ListOpts{Image: imageID, AllTenants: all}).AllPages(ctx)
		if err != nil {
			return nil, err
		}
		return servers.ExtractServers(pages)
	}
	u := Usage{Known: true, AllProjects: true}
	found, err := list(true)
	if gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		u.AllProjects = false
		found, err = list(false)
	}
	if err != nil {
		return Usage{Err: explain(err).Error()}
	}
	projects := map[string]bool{}
	for _, s := range found {
		// Nova's image filter matches the image's ID; check it, as a
		// filter an older Nova ignores would list every server.
		if id, _ := s.Image["id"].(string); id != imageID {
			continue
		}
		u.Servers++
		if s.TenantID != "" {
			projects[s.TenantID] = true
		}
	}
	for p := range projects {
		u.Projects = append(u.Projects, p)
	}
	sort.Strings(u.Projects)
	return u
}

// familyMembers lists the family's active images of one project, hidden
// or not, newest first.
func (p *publisher) familyMembers(ctx context.Context, owner string) ([]images.Image, error) {
	var all []images.Image
	for _, hidden := range []bool{false, true} {
		err := images.List(p.client, familyQuery{family: p.config.Family, owner: owner, hidden: hidden}).EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
			list, err := images.ExtractImages(page)
			all = append(all, list...)
			return true, err
		})
		if err != nil {
			return nil, fmt.Errorf("listing family %q: %w", p.config.Family, explain(err))
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].CreatedAt.After(all[j].CreatedAt) })
	return all, nil
}

// planRetire decides, for every family member beyond the newest
// keep_visible (the new image counts), what the policy does, after asking
// Nova who uses it. Nothing is changed.
func (p *publisher) planRetire(ctx context.Context, newImage *images.Image, compute func() (*gophercloud.ServiceClient, error)) ([]RetireAction, error) {
	c := p.config
	family, err := p.familyMembers(ctx, newImage.Owner)
	if err != nil {
		return nil, err
	}
	members := []images.Image{*newImage}
	for _, img := range family {
		if img.ID != newImage.ID {
			members = append(members, img)
		}
	}
	var nova *gophercloud.ServiceClient
	var novaErr error
	if compute != nil {
		if nova, novaErr = compute(); novaErr != nil {
			// gophercloud returns an empty client with the error.
			nova = nil
		}
	} else {
		novaErr = fmt.Errorf("no compute client")
	}
	var plan []RetireAction
	for i, img := range members {
		if i < c.KeepVisible {
			continue
		}
		a := RetireAction{ImageID: img.ID, Name: img.Name}
		if nova != nil {
			a.Usage = usageOf(ctx, nova, img.ID)
		} else {
			a.Usage = Usage{Err: fmt.Sprintf("no compute endpoint: %v", novaErr)}
		}
		for _, k := range []string{"kernel_id", "ramdisk_id"} {
			if id, _ := img.Properties[k].(string); id != "" {
				a.Parts = append(a.Parts, id)
			}
		}
		switch c.Retire {
		case RetireHide:
			a.Action = "hide"
			if img.Hidden {
				a.Action, a.Reason = "none", "already hidden"
			}
		case RetireShare:
			switch {
			case !a.Usage.Known || !a.Usage.AllProjects:
				a.Action, a.Reason = "none", "left unchanged: the projects using it are not known, and sharing with fewer would break them"
			default:
				a.Action = "share"
			}
		case RetireDelete:
			switch {
			case !a.Usage.Known || !a.Usage.AllProjects:
				a.Action, a.Reason = "hide", "not deleted: Nova could not say whether instances of every project use it"
			case a.Usage.Servers > 0:
				a.Action, a.Reason = "hide", "not deleted: in use"
			case img.Protected:
				a.Action, a.Reason = "hide", "not deleted: protected"
			default:
				a.Action = "delete"
			}
			if a.Action == "hide" && img.Hidden {
				a.Action = "none"
			}
			if a.Action != "delete" {
				a.Parts = nil
			}
		}
		if a.Action != "delete" {
			a.Parts = nil
		}
		plan = append(plan, a)
	}
	return plan, nil
}

// retire carries out the plan (all of it, or nothing with dry_run) and
// reports each step. An image is deleted only when planned so, which
// needs Nova's word that no instance of any project uses it.
func (p *publisher) retire(ctx context.Context, plan []RetireAction) ([]RetireAction, error) {
	c := p.config
	verb := "Retiring"
	if c.RetireDryRun {
		verb = "Would retire (retire_dry_run)"
	}
	for i := range plan {
		a := &plan[i]
		p.say(fmt.Sprintf("%s older image of family %q: %s", verb, c.Family, a))
		if c.RetireDryRun || a.Action == "none" {
			continue
		}
		var err error
		switch a.Action {
		case "hide":
			err = p.hide(ctx, a.ImageID)
		case "share":
			err = p.shareWith(ctx, a.ImageID, a.Usage.Projects)
		case "delete":
			err = p.deleteFamilyMember(ctx, a)
		}
		if err != nil {
			return plan, fmt.Errorf("retire = %q, image %s (%s): %w", c.Retire, a.ImageID, a.Name, err)
		}
		a.Done = true
	}
	return plan, nil
}

func (p *publisher) hide(ctx context.Context, id string) error {
	_, err := images.Update(ctx, p.client, id, images.UpdateOpts{images.ReplaceImageHidden{NewHidden: true}}).Extract()
	if err != nil {
		return explain(err)
	}
	return nil
}

// shareWith makes the image visible to its owner and, as members, the
// projects whose instances use it, and hides it from lists: Glance keeps
// members on shared images only. A pending member boots it by ID.
func (p *publisher) shareWith(ctx context.Context, id string, projects []string) error {
	opts := images.UpdateOpts{images.UpdateVisibility{Visibility: images.ImageVisibilityShared}, images.ReplaceImageHidden{NewHidden: true}}
	if _, err := images.Update(ctx, p.client, id, opts).Extract(); err != nil {
		return explain(err)
	}
	for _, project := range projects {
		_, err := members.Create(ctx, p.client, id, project).Extract()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
			return fmt.Errorf("sharing with project %s: %w", project, explain(err))
		}
	}
	return nil
}

// deleteFamilyMember deletes a root image, then its kernel and ramdisk
// when no other image of the owner names them.
func (p *publisher) deleteFamilyMember(ctx context.Context, a *RetireAction) error {
	if err := images.Delete(ctx, p.client, a.ImageID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return explain(err)
	}
	for _, part := range a.Parts {
		if used, err := p.partStillNamed(ctx, part); err != nil || used {
			continue
		}
		if err := images.Delete(ctx, p.client, part).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return fmt.Errorf("deleting %s of the UEC triple: %w", part, explain(err))
		}
	}
	return nil
}

// partStillNamed reports whether another image names id as its kernel or
// ramdisk.
func (p *publisher) partStillNamed(ctx context.Context, id string) (bool, error) {
	for _, key := range []string{"kernel_id", "ramdisk_id"} {
		q := propertyQuery{key: key, value: id}
		pages, err := images.List(p.client, q).AllPages(ctx)
		if err != nil {
			return true, err
		}
		list, err := images.ExtractImages(pages)
		if err != nil || len(list) > 0 {
			return true, err
		}
	}
	return false, nil
}

// propertyQuery lists images, hidden ones too, with one property value.
type propertyQuery struct{ key, value string }

func (q propertyQuery) ToImageListQuery() (string, error) {
	v := url.Values{}
	v.Set(q.key, q.value)
	return "?" + v.Encode(), nil
}
