// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

/// @title CheckpointAnchor
/// @notice Commits Merkle roots of FedLedger checkpoints (committed heights of a permissioned
///         CometBFT chain, their app hashes and the model versions promoted there) to a public chain.
/// @dev Event only, no storage: one anchor costs about 24k gas whatever the batch size, where
///      keeping each root in storage would add a fresh 32-byte slot (22.1k gas, see
///      docs/BENCHMARKS.md). The event log is part of the receipt, which every full node serves
///      and which the block's receipts root commits, so a verifier fetches it by tx hash.
///      Only the deployer may anchor, so every Anchored event of this contract speaks for the
///      operator who deployed it; ranges are checked for contiguity on the permissioned chain.
contract CheckpointAnchor {
    /// @notice The account allowed to anchor (the deployer).
    address public immutable owner;

    /// @notice One batch of checkpoints: heights fromHeight..toHeight of the chain whose id hashes
    ///         to chainId (keccak256 of its UTF-8 chain id), with Merkle root `root`.
    event Anchored(bytes32 indexed chainId, bytes32 root, uint64 fromHeight, uint64 toHeight);

    /// @notice The sender is not the owner.
    error NotOwner();

    /// @notice The height range is empty or starts at 0.
    error BadRange(uint64 fromHeight, uint64 toHeight);

    constructor() {
        owner = msg.sender;
    }

    /// @notice Anchor the root of the checkpoints at heights fromHeight..toHeight (inclusive).
    function anchor(bytes32 chainId, bytes32 root, uint64 fromHeight, uint64 toHeight) external {
        if (msg.sender != owner) revert NotOwner();
        if (fromHeight == 0 || fromHeight > toHeight) revert BadRange(fromHeight, toHeight);
        emit Anchored(chainId, root, fromHeight, toHeight);
    }
}
