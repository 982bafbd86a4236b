"""The pure model: entities, limits, id minting and the upload-session state machine. No I/O."""
