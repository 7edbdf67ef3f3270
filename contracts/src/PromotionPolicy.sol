// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

/// @title PromotionPolicy
/// @notice FedLedger's default promotion policy, deployed at genesis. When the evaluators'
///         attestations of a model version reach the task's quorum, the chain calls
///         checkPromotion with their weighted medians and the task's thresholds. This default
///         is the chain's native rule: promote iff the canary accuracy reaches the minimum and
///         the backdoor attack success rate stays within the maximum.
/// @dev A deny's reason is a comma-separated list of reason codes, which the chain stores in
///      the version's decision. A revert or running out of gas quarantines the version.
///      Metrics are in parts per million.
contract PromotionPolicy {
    /// @notice One promotion decision.
    event PromotionChecked(string task, uint64 version, bool promote, string reason);

    /// @notice Decide promote (true) or quarantine (false) for `version` of `task`.
    function checkPromotion(
        string calldata task,
        uint64 version,
        uint64 canaryAccuracyPpm,
        uint64 backdoorAsrPpm,
        uint64 minCanaryAccuracyPpm,
        uint64 maxBackdoorAsrPpm,
        uint64 attestations,
        uint256 weight
    ) external returns (bool promote, string memory reason) {
        attestations;
        weight;
        bool lowAccuracy = canaryAccuracyPpm < minCanaryAccuracyPpm;
        bool highAsr = backdoorAsrPpm > maxBackdoorAsrPpm;
        promote = !lowAccuracy && !highAsr;
        if (promote) {
            reason = "thresholds met";
        } else if (lowAccuracy && highAsr) {
            reason = "canary_accuracy_below_min,backdoor_asr_above_max";
        } else if (lowAccuracy) {
            reason = "canary_accuracy_below_min";
        } else {
            reason = "backdoor_asr_above_max";
        }
        emit PromotionChecked(task, version, promote, reason);
    }
}
