// The shim that pulumi-random's provider module replaces with a local directory its module zip
// lacks. The upstream module declares the path github.com/terraform-providers/terraform-provider-random
// (it is served as github.com/hashicorp/terraform-provider-random), so the shim lives under the
// declared path to be allowed to import the internal provider.
module github.com/terraform-providers/terraform-provider-random/shim

go 1.25.8

require (
	github.com/hashicorp/terraform-plugin-framework v1.19.0
	github.com/terraform-providers/terraform-provider-random v1.3.2-0.20260824155315-e1092b0cfc07
)

replace github.com/terraform-providers/terraform-provider-random => github.com/hashicorp/terraform-provider-random v1.3.2-0.20260824155315-e1092b0cfc07
