// Package shim exposes the upstream Terraform random provider (a plugin-framework provider) to the
// Pulumi bridge.
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"
	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// NewProvider returns the upstream provider.
func NewProvider() provider.Provider { return upstream.New() }
