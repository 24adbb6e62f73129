// Package shim exposes the upstream Terraform TLS provider (a plugin-framework provider) to the
// Pulumi bridge.
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"
	upstream "github.com/hashicorp/terraform-provider-tls/internal/provider"
)

// NewProvider returns the upstream provider.
func NewProvider() provider.Provider { return upstream.New() }
