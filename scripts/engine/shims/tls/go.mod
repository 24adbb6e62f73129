// The shim that pulumi-tls's provider module replaces with a local directory its module zip lacks:
// a package inside the upstream module's path, so that it may import its internal provider.
module github.com/hashicorp/terraform-provider-tls/shim

go 1.25.8

require (
	github.com/hashicorp/terraform-plugin-framework v1.19.0
	github.com/hashicorp/terraform-provider-tls v1.2.1-0.20260819085117-d044ca7c6f52
)
