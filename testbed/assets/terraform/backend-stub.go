// Package BACKEND_NAME is a stub written by the selfhost test bed: this Terraform build has no "BACKEND_NAME" backend.
package BACKEND_NAME

import (
	"errors"

	"github.com/hashicorp/terraform/internal/backend"
	"github.com/hashicorp/terraform/internal/configs/configschema"
	"github.com/hashicorp/terraform/internal/states/statemgr"
	"github.com/hashicorp/terraform/internal/tfdiags"
	"github.com/zclconf/go-cty/cty"
)

const msg = "the BACKEND_NAME backend is not in this Terraform build (selfhost test bed: its nested module is stubbed)"

type stub struct{}

func New() backend.Backend { return stub{} }

func (stub) ConfigSchema() *configschema.Block { return &configschema.Block{} }

func (stub) PrepareConfig(v cty.Value) (cty.Value, tfdiags.Diagnostics) {
	var d tfdiags.Diagnostics
	return v, d.Append(errors.New(msg))
}

func (stub) Configure(cty.Value) tfdiags.Diagnostics {
	var d tfdiags.Diagnostics
	return d.Append(errors.New(msg))
}

func (stub) StateMgr(string) (statemgr.Full, error)  { return nil, errors.New(msg) }
func (stub) DeleteWorkspace(string, bool) error      { return errors.New(msg) }
func (stub) Workspaces() ([]string, error)           { return nil, errors.New(msg) }
