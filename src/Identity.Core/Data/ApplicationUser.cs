using Microsoft.AspNetCore.Identity;

namespace Identity.Core.Data;

/// <summary>
/// A person who signs in at the authority: one identity everywhere (email unique across accounts), member of one
/// account with a role — or a platform administrator, who belongs to no account.
/// </summary>
public sealed class ApplicationUser : IdentityUser
{
    public string? DisplayName { get; set; }

    public Guid? AccountId { get; set; }

    public Accounts.Account? Account { get; set; }

    /// <summary><see cref="Accounts.AccountRoles"/>; null for platform administrators.</summary>
    public string? Role { get; set; }

    public bool IsPlatformAdmin { get; set; }

    public Accounts.UserStatus Status { get; set; } = Accounts.UserStatus.Active;

    /// <summary>Increases on every change; regions apply a snapshot only if its version is newer.</summary>
    public long Version { get; set; } = 1;

    /// <summary>
    /// The regions the user's account lives in (codes in ordinal order, comma-separated), kept by the outbox interceptor
    /// so that routing a change to the user reads no other table. Null while unknown (a user new to the account, or
    /// stored before this column existed): the next change reads the account's regions and fills it. Moving the account
    /// rewrites it together with <see cref="Version"/>, the concurrency token that keeps it exact.
    /// </summary>
    public string? RegionCodes { get; set; }

    public const int RegionCodesMaxLength = 1_000;

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the current password was set; the account's maximum password age counts from here.</summary>
    public DateTimeOffset? PasswordChangedAt { get; set; }

    /// <summary>A copy of this row's values without its <see cref="Account"/> navigation, detached from any context.</summary>
    public ApplicationUser DetachedCopy()
    {
        var copy = (ApplicationUser)MemberwiseClone();
        copy.Account = null;
        return copy;
    }
}
