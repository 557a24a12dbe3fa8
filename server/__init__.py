"""rebac's gRPC service (installed as `rebac_server`): the only package that imports grpc."""
