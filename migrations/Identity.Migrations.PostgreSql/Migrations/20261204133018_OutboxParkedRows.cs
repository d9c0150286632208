using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Migrations.PostgreSql.Migrations
{
    /// <inheritdoc />
    public partial class OutboxParkedRows : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Outbox_Pending",
                table: "Outbox");

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "ParkedAt",
                table: "Outbox",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "ParkedReason",
                table: "Outbox",
                type: "character varying(32)",
                maxLength: 32,
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_Outbox_Parked",
                table: "Outbox",
                column: "Id",
                filter: "\"ParkedAt\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_Outbox_Pending",
                table: "Outbox",
                column: "Id",
                filter: "\"SentAt\" IS NULL AND \"ParkedAt\" IS NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Outbox_Parked",
                table: "Outbox");

            migrationBuilder.DropIndex(
                name: "IX_Outbox_Pending",
                table: "Outbox");

            migrationBuilder.DropColumn(
                name: "ParkedAt",
                table: "Outbox");

            migrationBuilder.DropColumn(
                name: "ParkedReason",
                table: "Outbox");

            migrationBuilder.CreateIndex(
                name: "IX_Outbox_Pending",
                table: "Outbox",
                column: "Id",
                filter: "\"SentAt\" IS NULL");
        }
    }
}
