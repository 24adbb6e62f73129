# The example app's ACL policy: its own service instances, its own keys, and reading the catalog.
service "consul-example-app" {
  policy = "write"
}
key_prefix "consul-example-app/" {
  policy = "write"
}
service_prefix "" {
  policy = "read"
}
