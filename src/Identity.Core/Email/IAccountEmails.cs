using Identity.Core.Data;

namespace Identity.Core.Email;

/// <summary>
/// The emails user operations cause, written (queued) inside the operation's unit of work. The server renders them
/// (its templates, its public address, its product name) and queues them with <see cref="OutgoingEmail"/>.
/// </summary>
public interface IAccountEmails
{
    /// <summary>Whether a mail server is configured: without one, no operation that needs an email can run.</summary>
    bool Enabled { get; }

    /// <summary>How long a link of this purpose (<see cref="Users.UserLinkPurposes"/>) works.</summary>
    TimeSpan LifetimeOf(string purpose);

    /// <summary>Queues the email carrying a link of <paramref name="purpose"/> with <paramref name="token"/>, to <paramref name="address"/>.</summary>
    void Link(string purpose, ApplicationUser user, string address, string token, DateTimeOffset expiresAt);

    /// <summary>Queues the notice to the former address that the account's email is changing to another.</summary>
    void EmailChanging(ApplicationUser user, string oldAddress);

    /// <summary>Queues the notice that the password was reset.</summary>
    void PasswordWasReset(ApplicationUser user);

    /// <summary>Queues the answer to a reset request the account's policy does not allow: ask the account's admin.</summary>
    void ResetNotAllowed(ApplicationUser user);
}
