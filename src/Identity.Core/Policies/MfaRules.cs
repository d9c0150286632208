using Identity.Core.Accounts;

namespace Identity.Core.Policies;

/// <summary>Whether a user must present a second factor, from the account's <see cref="MfaPolicy"/> and their role.</summary>
public static class MfaRules
{
    /// <summary>
    /// <c>true</c> when the user must present a second factor (and so enrol one if they have none).
    /// <see cref="MfaRequirement.Optional"/> never requires it: users who enrolled a factor are asked for it anyway,
    /// which is the sign-in's business, not the policy's. A user without a role in an account (<c>null</c>) is
    /// never an account admin.
    /// </summary>
    public static bool IsRequired(MfaPolicy policy, string? role)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return policy.Requirement switch
        {
            MfaRequirement.Off or MfaRequirement.Optional => false,
            MfaRequirement.RequiredForAdmins => AccountRoles.CanAdminister(role),
            MfaRequirement.RequiredForEveryone => true,
            _ => throw new ArgumentOutOfRangeException(nameof(policy), policy.Requirement, "Unknown MFA requirement."),
        };
    }
}
