// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

/// @title AdmissionPolicy
/// @notice FedLedger's default admission policy, deployed at genesis. The chain calls
///         checkAdmission with an admission credential's claims after its own checks (proof,
///         issuer, validity window, revocation, enrollment cap) passed; this default admits
///         every such credential. Governance points a task (or the chain) at another contract
///         with the same function to change the rule.
/// @dev A policy answers (allow, reason). A revert or running out of the chain's fixed gas
///      budget counts as a deny. msg.sender is the chain's policy caller 0x…fed1.
contract AdmissionPolicy {
    /// @notice One admission decision (also recorded by the chain as a PolicyDecision log).
    event AdmissionChecked(string subject, string role, bool allow, string reason);

    /// @notice Decide an admission from the credential's claims.
    /// @param subject the member's DID; issuer the issuer's DID; organization and role as claimed;
    ///        tasks the tasks the credential names; validFrom and validUntil in Unix seconds.
    function checkAdmission(
        string calldata subject,
        string calldata issuer,
        string calldata organization,
        string calldata role,
        string[] calldata tasks,
        uint64 validFrom,
        uint64 validUntil
    ) external returns (bool allow, string memory reason) {
        issuer;
        organization;
        tasks;
        validFrom;
        validUntil;
        allow = true;
        reason = "admitted by the default policy";
        emit AdmissionChecked(subject, role, allow, reason);
    }
}
