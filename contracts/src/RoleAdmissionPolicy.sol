// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

/// @title RoleAdmissionPolicy
/// @notice An admission policy that admits only the roles given at deployment, e.g. a task
///         that takes no more trainers: deploy it with ["aggregator", "evaluator"] and point the
///         task at it by a governance vote (set_policy_contract).
contract RoleAdmissionPolicy {
    mapping(bytes32 => bool) private allowed;

    /// @notice One admission decision.
    event AdmissionChecked(string subject, string role, bool allow, string reason);

    /// @param roles the roles this policy admits.
    constructor(string[] memory roles) {
        for (uint256 i = 0; i < roles.length; i++) {
            allowed[keccak256(bytes(roles[i]))] = true;
        }
    }

    /// @notice Whether this policy admits `role`.
    function admits(string calldata role) external view returns (bool) {
        return allowed[keccak256(bytes(role))];
    }

    /// @notice Admit iff the credential's role is one of the deployment's roles.
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
        allow = allowed[keccak256(bytes(role))];
        reason = allow
            ? string.concat("role ", role, " is admitted")
            : string.concat("role ", role, " is not admitted by this policy");
        emit AdmissionChecked(subject, role, allow, reason);
    }
}
