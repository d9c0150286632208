using Identity.Core.Data;

namespace Identity.Core.Users;

/// <summary>
/// The user's authenticator secret and recovery codes, kept by the server (they are protected with its data-protection
/// ring): what enrolling an authenticator app writes, and what resetting a user's MFA removes. Each method only changes
/// the user and its tokens through ASP.NET Core Identity's user manager; the caller's operation saves.
/// </summary>
public interface IUserSecondFactors
{
    /// <summary>
    /// Confirms the pending authenticator secret with a code from the app: the secret becomes the user's, two-factor
    /// sign-in is on, and a new set of recovery codes is returned (shown once). Null when the code does not match.
    /// </summary>
    Task<IReadOnlyList<string>?> ConfirmEnrollmentAsync(ApplicationUser user, string code);

    /// <summary>A new set of single-use recovery codes (shown once); the previous set stops working.</summary>
    Task<IReadOnlyList<string>> RegenerateRecoveryCodesAsync(ApplicationUser user);

    /// <summary>The user has an authenticator app (a confirmed secret).</summary>
    Task<bool> HasTotpAsync(ApplicationUser user);

    /// <summary>Removes the authenticator and recovery codes and turns two-factor sign-in off; the caller's save writes it.</summary>
    Task RemoveAllAsync(ApplicationUser user);
}
