//! The wire: go-plugin handshake, mTLS and the tonic services for tfplugin6.
//! Knows protobuf; knows nothing of hosts or Kubernetes.
