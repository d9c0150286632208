using System.Security.Cryptography;
using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Account;

/// <summary>
/// The hash of a password nobody has, made once by the server's own <see cref="IPasswordHasher{TUser}"/>: verifying a
/// password against it costs what verifying a user's does. Sign-in does so whenever it would otherwise answer without
/// verifying anything (no user with that email, a locked-out or disabled user), so the time it takes does not tell
/// whether an email has an account (OWASP Authentication Cheat Sheet, "Authentication Responses": response time).
/// </summary>
public sealed class DecoyPasswordHash
{
    private static readonly ApplicationUser Nobody = new();
    private string? _hash;

    /// <summary>Verifies <paramref name="password"/> against the decoy; the answer is always "wrong".</summary>
    public void Verify(IPasswordHasher<ApplicationUser> hasher, string password)
    {
        ArgumentNullException.ThrowIfNull(hasher);
        // Two first callers may both make one; either is as good.
        _hash ??= hasher.HashPassword(Nobody, RandomNumberGenerator.GetHexString(32));
        hasher.VerifyHashedPassword(Nobody, _hash, password);
    }
}
