"""The GraphQL edge: Strawberry types and resolvers that parse input, call the domain, shape output."""
