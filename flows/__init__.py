"""What happens: each flow a short function over the store and the connectors, in the policy's words."""
