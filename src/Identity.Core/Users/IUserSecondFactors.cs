using Identity.Core.Data;

namespace Identity.Core.Users;

/// <summary>
/// The user's authenticator secret and recovery codes, kept by the server (they are protected with its data-protection
/// ring): what resetting a user's MFA removes.
/// </summary>
public interface IUserSecondFactors
{
    /// <summary>Removes the authenticator and recovery codes and turns two-factor sign-in off; the caller's save writes it.</summary>
    Task RemoveAllAsync(ApplicationUser user);
}
