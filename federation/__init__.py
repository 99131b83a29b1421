"""The federation between city nodes: protocol, signing, keys, peers, settlement."""
