// Package bridged describes the tls and random providers for the Pulumi Terraform bridge, and serves
// them for the commands in cmd/: the upstream Terraform providers (through scripts/engine/shims)
// with the type tokens that the npm SDKs @pulumi/tls and @pulumi/random use. The Go module proxy here does not serve the
// pulumi-tls and pulumi-random provider modules, so this stands in for their resources.go; the
// bridge derives everything else (property names, secrets, defaults) from the upstream schemas.
package bridged

import (
	"context"
	"fmt"
	"os"
	"strings"
	"unicode"

	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"

	tlsshim "github.com/hashicorp/terraform-provider-tls/shim"
	randomshim "github.com/terraform-providers/terraform-provider-random/shim"
)

// Version is the provider version, set with -ldflags "-X consulpulumi/bridged.Version=...".
var Version = "0.0.0-dev"

// camel turns "cert_request" into "CertRequest".
func camel(snake string) string {
	var b strings.Builder
	for _, part := range strings.Split(snake, "_") {
		if part == "" {
			continue
		}
		r := []rune(part)
		b.WriteRune(unicode.ToUpper(r[0]))
		b.WriteString(string(r[1:]))
	}
	return b.String()
}

func lowerFirst(s string) string {
	r := []rune(s)
	return string(unicode.ToLower(r[0])) + string(r[1:])
}

// withTokens maps every upstream resource and data source to pkg:index/<file>:<Name>, where Name
// is the CamelCase of the upstream name without the "<pkg>_" prefix, plus keepPrefix ("Random"
// for random_uuid -> RandomUuid) and data sources are get<Name> functions.
func withTokens(info tfbridge.ProviderInfo, keepPrefix string) tfbridge.ProviderInfo {
	pkg := info.Name
	info.Resources = map[string]*tfbridge.ResourceInfo{}
	info.P.ResourcesMap().Range(func(name string, _ shim.Resource) bool {
		typ := keepPrefix + camel(strings.TrimPrefix(name, pkg+"_"))
		info.Resources[name] = &tfbridge.ResourceInfo{
			Tok: tokens.Type(pkg + ":index/" + lowerFirst(typ) + ":" + typ),
		}
		return true
	})
	info.DataSources = map[string]*tfbridge.DataSourceInfo{}
	info.P.DataSourcesMap().Range(func(name string, _ shim.Resource) bool {
		fn := "get" + camel(strings.TrimPrefix(name, pkg+"_"))
		info.DataSources[name] = &tfbridge.DataSourceInfo{
			Tok: tokens.ModuleMember(pkg + ":index/" + fn + ":" + fn),
		}
		return true
	})
	return info
}

// TLS is the provider behind @pulumi/tls.
func TLS() tfbridge.ProviderInfo {
	return withTokens(tfbridge.ProviderInfo{
		P:                              pf.ShimProvider(tlsshim.NewProvider()),
		Name:                           "tls",
		Version:                        Version,
		GitHubOrg:                      "hashicorp",
		MetadataInfo:                   tfbridge.NewProviderMetadata(nil),
		EnableZeroDefaultSchemaVersion: true,
	}, "")
}

// Random is the provider behind @pulumi/random. As pulumi-random does, it enables the accurate
// bridge preview and raw state deltas, and gives RandomBytes (whose upstream resource has no id)
// its base64 value as the resource ID. NOTE: an ID is never a secret, so RandomBytes' value is
// stored in plaintext in the state, as it is with the published provider.
func Random() tfbridge.ProviderInfo {
	info := withTokens(tfbridge.ProviderInfo{
		P:                              pf.ShimProvider(randomshim.NewProvider()),
		Name:                           "random",
		Version:                        Version,
		GitHubOrg:                      "hashicorp",
		MetadataInfo:                   tfbridge.NewProviderMetadata(nil),
		EnableZeroDefaultSchemaVersion: true,
		EnableAccurateBridgePreview:    true,
		EnableRawStateDelta:            true,
	}, "Random")
	info.Resources["random_bytes"].ComputeID = func(_ context.Context, state resource.PropertyMap) (resource.ID, error) {
		v, ok := state["base64"]
		if !ok {
			return "", fmt.Errorf("random_bytes state has no base64 property")
		}
		if v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsString() {
			return "", fmt.Errorf("random_bytes base64 property is not a string")
		}
		return resource.ID(v.StringValue()), nil
	}
	return info
}

// ByName returns the provider description for "tls" or "random".
func ByName(name string) (tfbridge.ProviderInfo, bool) {
	switch name {
	case "tls":
		return TLS(), true
	case "random":
		return Random(), true
	}
	return tfbridge.ProviderInfo{}, false
}

// Serve runs the provider named name (see ByName) as its plugin binary, with schema as its package
// schema: the schema.json that pulumi-tfgen-bridged generated into the command's directory and the
// command embeds (scripts/engine/build.sh). It refuses the committed placeholder.
func Serve(name string, schema []byte) {
	if len(schema) < 100 {
		fmt.Fprintln(os.Stderr, "schema.json is the placeholder: build this with scripts/engine/build.sh")
		os.Exit(1)
	}
	info, ok := ByName(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "no bridged provider named %q\n", name)
		os.Exit(2)
	}
	pf.Main(context.Background(), name, info, pf.ProviderMetadata{PackageSchema: schema})
}
